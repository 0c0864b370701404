//! Mesos JSON encoding of `scheduler.Call` and `scheduler.Event` (Mesos's own converter:
//! snake_case proto names, enums as name strings, bytes as base64), built on `cluster::types`.
//!
//! Calls and events mirror the proto: a `type` plus one optional payload field per type.
//! Unknown event/call types and enum strings decode (to `Unknown`); unknown keys are kept in
//! `extra` maps so that what was received can be re-encoded unchanged.

use crate::cluster::types::{
    AgentId, CommandInfo, ContainerInfo, DurationInfo, FrameworkId, Id, KillPolicy, Labels, Offer,
    OfferId, Resource, TaskId, TaskInfo, TaskStatus,
};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

type Extra = IndexMap<String, Value>;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $s)] $var,)*
            /// A name this build does not know (newer Mesos).
            #[serde(other, rename = "UNKNOWN")]
            Unknown,
        }
    };
}

string_enum!(
    /// `scheduler.Call.Type`.
    CallType {
        Subscribe = "SUBSCRIBE", Teardown = "TEARDOWN", Accept = "ACCEPT", Decline = "DECLINE",
        Revive = "REVIVE", Kill = "KILL", Shutdown = "SHUTDOWN", Acknowledge = "ACKNOWLEDGE",
        Reconcile = "RECONCILE", Message = "MESSAGE", Request = "REQUEST", Suppress = "SUPPRESS",
        AcceptInverseOffers = "ACCEPT_INVERSE_OFFERS",
        DeclineInverseOffers = "DECLINE_INVERSE_OFFERS",
        AcknowledgeOperationStatus = "ACKNOWLEDGE_OPERATION_STATUS",
        ReconcileOperations = "RECONCILE_OPERATIONS", UpdateFramework = "UPDATE_FRAMEWORK",
    }
);

string_enum!(
    /// `scheduler.Event.Type`.
    EventType {
        Subscribed = "SUBSCRIBED", Offers = "OFFERS", Rescind = "RESCIND", Update = "UPDATE",
        Message = "MESSAGE", Failure = "FAILURE", Error = "ERROR", Heartbeat = "HEARTBEAT",
        InverseOffers = "INVERSE_OFFERS", RescindInverseOffer = "RESCIND_INVERSE_OFFER",
        UpdateOperationStatus = "UPDATE_OPERATION_STATUS",
    }
);

string_enum!(
    /// `OperationState`.
    OperationState {
        Unsupported = "OPERATION_UNSUPPORTED", Pending = "OPERATION_PENDING",
        Finished = "OPERATION_FINISHED", Failed = "OPERATION_FAILED", Error = "OPERATION_ERROR",
        Dropped = "OPERATION_DROPPED", Unreachable = "OPERATION_UNREACHABLE",
        GoneByOperator = "OPERATION_GONE_BY_OPERATOR", Recovering = "OPERATION_RECOVERING",
    }
);

string_enum!(
    /// `Offer.Operation.Type`.
    OperationType {
        Launch = "LAUNCH", Reserve = "RESERVE", Unreserve = "UNRESERVE", Create = "CREATE",
        Destroy = "DESTROY", LaunchGroup = "LAUNCH_GROUP", GrowVolume = "GROW_VOLUME",
        ShrinkVolume = "SHRINK_VOLUME", CreateDisk = "CREATE_DISK", DestroyDisk = "DESTROY_DISK",
    }
);

// ---------------------------------------------------------------- calls

/// `mesos.v1.scheduler.Call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(rename = "type")]
    pub kind: CallType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Subscribe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Accept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revive: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<Kill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<Acknowledge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_inverse_offers: Option<InverseOffersAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_inverse_offers: Option<InverseOffersAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge_operation_status: Option<AcknowledgeOperationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_operations: Option<ReconcileOperations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_framework: Option<UpdateFramework>,
    /// Payloads of calls not modelled here (shutdown, message, request).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Call {
    fn new(kind: CallType, framework_id: Option<FrameworkId>) -> Call {
        Call {
            framework_id,
            kind,
            subscribe: None,
            accept: None,
            decline: None,
            revive: None,
            suppress: None,
            kill: None,
            acknowledge: None,
            reconcile: None,
            accept_inverse_offers: None,
            decline_inverse_offers: None,
            acknowledge_operation_status: None,
            reconcile_operations: None,
            update_framework: None,
            extra: Extra::new(),
        }
    }

    /// SUBSCRIBE; on a resubscribe the ID goes both into the call and into `framework_info.id`.
    pub fn subscribe(mut framework_info: FrameworkInfo, suppressed_roles: Vec<String>) -> Call {
        let id = framework_info.id.clone();
        let mut c = Call::new(CallType::Subscribe, id);
        framework_info.id = c.framework_id.clone();
        c.subscribe = Some(Subscribe {
            framework_info,
            suppressed_roles,
            extra: Extra::new(),
        });
        c
    }

    pub fn teardown(framework_id: FrameworkId) -> Call {
        Call::new(CallType::Teardown, Some(framework_id))
    }

    pub fn accept(framework_id: FrameworkId, accept: Accept) -> Call {
        let mut c = Call::new(CallType::Accept, Some(framework_id));
        c.accept = Some(accept);
        c
    }

    pub fn decline(
        framework_id: FrameworkId,
        offer_ids: Vec<OfferId>,
        refuse_seconds: f64,
    ) -> Call {
        let mut c = Call::new(CallType::Decline, Some(framework_id));
        c.decline = Some(Decline {
            offer_ids,
            filters: Some(Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        c
    }

    pub fn revive(framework_id: FrameworkId, roles: Vec<String>) -> Call {
        let mut c = Call::new(CallType::Revive, Some(framework_id));
        c.revive = Some(Roles { roles });
        c
    }

    pub fn suppress(framework_id: FrameworkId, roles: Vec<String>) -> Call {
        let mut c = Call::new(CallType::Suppress, Some(framework_id));
        c.suppress = Some(Roles { roles });
        c
    }

    pub fn kill(framework_id: FrameworkId, kill: Kill) -> Call {
        let mut c = Call::new(CallType::Kill, Some(framework_id));
        c.kill = Some(kill);
        c
    }

    pub fn acknowledge(framework_id: FrameworkId, ack: Acknowledge) -> Call {
        let mut c = Call::new(CallType::Acknowledge, Some(framework_id));
        c.acknowledge = Some(ack);
        c
    }

    /// RECONCILE; an empty list is an implicit reconciliation (the payload is still sent).
    pub fn reconcile(framework_id: FrameworkId, tasks: Vec<ReconcileTask>) -> Call {
        let mut c = Call::new(CallType::Reconcile, Some(framework_id));
        c.reconcile = Some(Reconcile { tasks });
        c
    }

    /// ACCEPT_INVERSE_OFFERS (`accept`) or DECLINE_INVERSE_OFFERS, with a filter.
    pub fn answer_inverse_offers(
        framework_id: FrameworkId,
        accept: bool,
        inverse_offer_ids: Vec<OfferId>,
        refuse_seconds: f64,
    ) -> Call {
        let answer = InverseOffersAnswer {
            inverse_offer_ids,
            filters: Some(Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        };
        if accept {
            let mut c = Call::new(CallType::AcceptInverseOffers, Some(framework_id));
            c.accept_inverse_offers = Some(answer);
            c
        } else {
            let mut c = Call::new(CallType::DeclineInverseOffers, Some(framework_id));
            c.decline_inverse_offers = Some(answer);
            c
        }
    }

    /// ACKNOWLEDGE_OPERATION_STATUS: `agent_id`, `operation_id` and the base64 of
    /// `status.uuid.value`, echoed.
    pub fn acknowledge_operation_status(
        framework_id: FrameworkId,
        ack: AcknowledgeOperationStatus,
    ) -> Call {
        let mut c = Call::new(CallType::AcknowledgeOperationStatus, Some(framework_id));
        c.acknowledge_operation_status = Some(ack);
        c
    }

    /// RECONCILE_OPERATIONS; an empty list asks for every known operation.
    pub fn reconcile_operations(
        framework_id: FrameworkId,
        operations: Vec<ReconcileOperation>,
    ) -> Call {
        let mut c = Call::new(CallType::ReconcileOperations, Some(framework_id));
        c.reconcile_operations = Some(ReconcileOperations { operations });
        c
    }

    /// UPDATE_FRAMEWORK: the whole new `FrameworkInfo` (its `id` set) and the roles to keep
    /// suppressed.
    pub fn update_framework(framework_info: FrameworkInfo, suppressed_roles: Vec<String>) -> Call {
        let mut c = Call::new(CallType::UpdateFramework, framework_info.id.clone());
        c.update_framework = Some(UpdateFramework {
            framework_info,
            suppressed_roles,
        });
        c
    }
}

/// The payload of ACCEPT_INVERSE_OFFERS and DECLINE_INVERSE_OFFERS.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InverseOffersAnswer {
    #[serde(default)]
    pub inverse_offer_ids: Vec<OfferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcknowledgeOperationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    pub uuid: String,
    pub operation_id: Id,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReconcileOperations {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<ReconcileOperation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileOperation {
    pub operation_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateFramework {
    pub framework_info: FrameworkInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    pub framework_info: FrameworkInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `FrameworkInfo.Capability`; the type is kept as its name (unknown names survive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FrameworkInfo {
    pub user: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Filters {
    /// Absent means 5 s (the proto default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Accept {
    #[serde(default)]
    pub offer_ids: Vec<OfferId>,
    #[serde(default)]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `Offer.Operation`: LAUNCH, LAUNCH_GROUP, RESERVE, UNRESERVE, CREATE and DESTROY are
/// modelled; the others stay JSON in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    #[serde(rename = "type")]
    pub kind: OperationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_group: Option<LaunchGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<ResourcesOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreserve: Option<ResourcesOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<VolumesOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy: Option<VolumesOp>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The payload of RESERVE and UNRESERVE.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourcesOp {
    #[serde(default)]
    pub resources: Vec<Resource>,
}

/// The payload of CREATE and DESTROY.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VolumesOp {
    #[serde(default)]
    pub volumes: Vec<Resource>,
}

impl Operation {
    fn of_kind(kind: OperationType) -> Operation {
        Operation {
            kind,
            id: None,
            launch: None,
            launch_group: None,
            reserve: None,
            unreserve: None,
            create: None,
            destroy: None,
            extra: Extra::new(),
        }
    }

    pub fn launch(task_infos: Vec<TaskInfo>) -> Operation {
        Operation {
            launch: Some(Launch { task_infos }),
            ..Operation::of_kind(OperationType::Launch)
        }
    }

    pub fn launch_group(executor: ExecutorInfo, tasks: Vec<TaskInfo>) -> Operation {
        Operation {
            launch_group: Some(LaunchGroup {
                executor,
                task_group: TaskGroupInfo { tasks },
            }),
            ..Operation::of_kind(OperationType::LaunchGroup)
        }
    }

    pub fn reserve(resources: Vec<Resource>) -> Operation {
        Operation {
            reserve: Some(ResourcesOp { resources }),
            ..Operation::of_kind(OperationType::Reserve)
        }
    }

    pub fn unreserve(resources: Vec<Resource>) -> Operation {
        Operation {
            unreserve: Some(ResourcesOp { resources }),
            ..Operation::of_kind(OperationType::Unreserve)
        }
    }

    pub fn create(volumes: Vec<Resource>) -> Operation {
        Operation {
            create: Some(VolumesOp { volumes }),
            ..Operation::of_kind(OperationType::Create)
        }
    }

    pub fn destroy(volumes: Vec<Resource>) -> Operation {
        Operation {
            destroy: Some(VolumesOp { volumes }),
            ..Operation::of_kind(OperationType::Destroy)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Launch {
    #[serde(default)]
    pub task_infos: Vec<TaskInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroup {
    pub executor: ExecutorInfo,
    pub task_group: TaskGroupInfo,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskGroupInfo {
    #[serde(default)]
    pub tasks: Vec<TaskInfo>,
}

/// `ExecutorInfo` (type as its name: DEFAULT, CUSTOM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub executor_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Decline {
    #[serde(default)]
    pub offer_ids: Vec<OfferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// The payload of REVIVE and SUPPRESS (empty = every role of the framework).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Roles {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

/// Copy `agent_id`, `task_id` and the base64 `uuid` verbatim from the update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledge {
    pub agent_id: AgentId,
    pub task_id: TaskId,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reconcile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<ReconcileTask>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileTask {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

// ---------------------------------------------------------------- events

/// `mesos.v1.scheduler.Event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<Offers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescind: Option<Rescind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse_offers: Option<InverseOffers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescind_inverse_offer: Option<RescindInverseOffer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_operation_status: Option<UpdateOperationStatus>,
    /// Payloads of events not modelled here (message).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Event {
    /// An event with only a type (HEARTBEAT).
    pub fn of_kind(kind: EventType) -> Event {
        Event {
            kind,
            subscribed: None,
            offers: None,
            rescind: None,
            update: None,
            failure: None,
            error: None,
            inverse_offers: None,
            rescind_inverse_offer: None,
            update_operation_status: None,
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InverseOffers {
    #[serde(default)]
    pub inverse_offers: Vec<InverseOffer>,
}

/// "Please vacate this agent by then" (maintenance): `resources` empty = all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InverseOffer {
    pub id: OfferId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    pub unavailability: Unavailability,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    /// `framework_id`, `url`.
    #[serde(flatten)]
    pub extra: Extra,
}

/// When an agent may go away: `start` (ns since the epoch) and how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unavailability {
    pub start: DurationInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescindInverseOffer {
    pub inverse_offer_id: OfferId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateOperationStatus {
    pub status: OperationStatus,
}

/// Feedback on an operation that carried an ID; acknowledge when `uuid` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<Id>,
    pub state: OperationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub converted_resources: Vec<Resource>,
    /// `UUID { value: base64 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<UuidValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UuidValue {
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub framework_id: FrameworkId,
    /// Absent means 15 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<f64>,
    /// `MasterInfo`, kept as JSON (informational only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_info: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Offers {
    #[serde(default)]
    pub offers: Vec<Offer>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescind {
    pub offer_id: OfferId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

/// Agent removed (no executor) or executor exited (`status`: the raw wait status).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub message: String,
}

/// Decode one event record.
pub fn decode_event(bytes: &[u8]) -> Result<Event, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Encode one call body.
pub fn encode_call(call: &Call) -> Vec<u8> {
    serde_json::to_vec(call).expect("a Call always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::types::TaskState;

    #[test]
    fn unknown_types_and_enum_strings_decode() {
        let e = decode_event(br#"{"type":"SOMETHING_NEW","something_new":{"x":1}}"#).unwrap();
        assert_eq!(e.kind, EventType::Unknown);
        assert!(e.extra.contains_key("something_new"));
        let e = decode_event(
            br#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_NEWSTATE","reason":"REASON_NEW"}}}"#,
        )
        .unwrap();
        assert_eq!(e.update.unwrap().status.state, TaskState::TaskUnknown);
        let c: Call = serde_json::from_str(r#"{"type":"FUTURE_CALL"}"#).unwrap();
        assert_eq!(c.kind, CallType::Unknown);
    }

    #[test]
    fn builders_give_mesos_shape() {
        let fid = Id::new("f-1");
        let v = serde_json::to_value(Call::reconcile(fid.clone(), vec![])).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"framework_id":{"value":"f-1"},"type":"RECONCILE","reconcile":{}})
        );
        let v =
            serde_json::to_value(Call::decline(fid.clone(), vec![Id::new("o")], 600.0)).unwrap();
        assert_eq!(v["decline"]["filters"]["refuse_seconds"], 600.0);
        let fi = FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            id: Some(fid),
            ..Default::default()
        };
        let v = serde_json::to_value(Call::subscribe(fi, vec![])).unwrap();
        assert_eq!(v["framework_id"], v["subscribe"]["framework_info"]["id"]);
        let v = serde_json::to_value(Event::of_kind(EventType::Heartbeat)).unwrap();
        assert_eq!(v, serde_json::json!({"type":"HEARTBEAT"}));
    }
}
