//! Hand-written prost messages for `mesos.v1.scheduler.Call`/`Event` and the `mesos.v1`
//! messages they carry (field numbers and types from the v1 protos; all proto2).
//!
//! Every message also derives serde in Mesos's JSON shape (snake_case names, enums as their
//! name strings, bytes as base64), which is how `convert` maps them onto `cluster::types`.
//! Enum fields are `i32` (unknown numbers survive a decode/encode); the Rust enums give the
//! names. Everything an offer carries in a `Resource` is modelled, so offered resources can be
//! echoed back unchanged (prost drops unknown fields). Not modelled (skipped on decode, hence
//! lost on re-encode): `Volume.Source.secret`/`csi_volume`, `Image.appc`/`Image.Docker.config`,
//! `DockerInfo.port_mappings`, `ContainerInfo.network_infos`/`linux_info`/`rlimit_info`/`tty_info`,
//! `TaskInfo.health_check`/`check`/`discovery`, `Environment.Variable.secret`,
//! `TaskStatus.check_status`/`limitation`, `ContainerStatus.cgroup_info`,
//! `NetworkInfo.port_mappings`, `Offer.domain`/`unavailability`, `MasterInfo.domain`, the
//! inverse-offer, operation-status, message and request payloads and `FrameworkInfo.offer_filters`.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Name <-> number of a proto enum.
pub trait NamedEnum {
    fn name_of(v: i32) -> Option<&'static str>;
    fn number_of(name: &str) -> Option<i32>;
}

macro_rules! named_enum {
    ($name:ident { $($var:ident = $num:literal => $s:literal),* $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum $name {
            $($var = $num,)*
        }

        impl $name {
            pub fn as_str_name(self) -> &'static str {
                match self {
                    $($name::$var => $s,)*
                }
            }

            pub fn from_str_name(s: &str) -> Option<$name> {
                match s {
                    $($s => Some($name::$var),)*
                    _ => None,
                }
            }
        }

        impl NamedEnum for $name {
            fn name_of(v: i32) -> Option<&'static str> {
                $name::try_from(v).ok().map($name::as_str_name)
            }
            fn number_of(name: &str) -> Option<i32> {
                $name::from_str_name(name).map(|e| e as i32)
            }
        }
    };
}

// ---- serde helpers: enums by name, bytes as base64, 64-bit integers from numbers or strings.

fn ser_enum<E: NamedEnum, S: Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
    match E::name_of(*v) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_i32(*v),
    }
}

/// An optional enum with a number this build does not know is left out of the JSON (what
/// Mesos's own converter does with an unknown value); a required one stays a number.
fn ser_enum_opt<E: NamedEnum, S: Serializer>(v: &Option<i32>, s: S) -> Result<S::Ok, S::Error> {
    match v.and_then(E::name_of) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_none(),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NameOrNumber {
    Name(String),
    Number(i32),
}

fn de_enum<'de, E: NamedEnum, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    Ok(de_enum_opt::<E, D>(d)?.unwrap_or_default())
}

/// An unknown name decodes as unset (what the Mesos master does for optional fields).
fn de_enum_opt<'de, E: NamedEnum, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    Ok(match Option::<NameOrNumber>::deserialize(d)? {
        Some(NameOrNumber::Name(n)) => E::number_of(&n),
        Some(NameOrNumber::Number(n)) => Some(n),
        None => None,
    })
}

fn ser_b64<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
}

fn ser_b64_opt<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_b64(v, s),
        None => s.serialize_none(),
    }
}

fn de_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    Ok(de_b64_opt(d)?.unwrap_or_default())
}

fn de_b64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Some)
            .map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrString<T> {
    Int(T),
    Str(String),
}

fn de_int<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: Deserialize<'de> + std::str::FromStr + Default,
    D: Deserializer<'de>,
{
    Ok(de_int_opt(d)?.unwrap_or_default())
}

/// Mesos accepts 64-bit integers as JSON numbers or numeric strings.
fn de_int_opt<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de> + std::str::FromStr,
    D: Deserializer<'de>,
{
    match Option::<IntOrString<T>>::deserialize(d)? {
        Some(IntOrString::Int(v)) => Ok(Some(v)),
        Some(IntOrString::Str(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("not an integer: {s:?}"))),
        None => Ok(None),
    }
}

named_enum!(CallType { Unknown = 0 => "UNKNOWN", Subscribe = 1 => "SUBSCRIBE", Teardown = 2 => "TEARDOWN", Accept = 3 => "ACCEPT", Decline = 4 => "DECLINE", Revive = 5 => "REVIVE", Kill = 6 => "KILL", Shutdown = 7 => "SHUTDOWN", Acknowledge = 8 => "ACKNOWLEDGE", Reconcile = 9 => "RECONCILE", Message = 10 => "MESSAGE", Request = 11 => "REQUEST", Suppress = 12 => "SUPPRESS", AcceptInverseOffers = 13 => "ACCEPT_INVERSE_OFFERS", DeclineInverseOffers = 14 => "DECLINE_INVERSE_OFFERS", AcknowledgeOperationStatus = 15 => "ACKNOWLEDGE_OPERATION_STATUS", ReconcileOperations = 16 => "RECONCILE_OPERATIONS", UpdateFramework = 17 => "UPDATE_FRAMEWORK" });
named_enum!(EventType { Unknown = 0 => "UNKNOWN", Subscribed = 1 => "SUBSCRIBED", Offers = 2 => "OFFERS", Rescind = 3 => "RESCIND", Update = 4 => "UPDATE", Message = 5 => "MESSAGE", Failure = 6 => "FAILURE", Error = 7 => "ERROR", Heartbeat = 8 => "HEARTBEAT", InverseOffers = 9 => "INVERSE_OFFERS", RescindInverseOffer = 10 => "RESCIND_INVERSE_OFFER", UpdateOperationStatus = 11 => "UPDATE_OPERATION_STATUS" });
named_enum!(FrameworkCapabilityType { Unknown = 0 => "UNKNOWN", RevocableResources = 1 => "REVOCABLE_RESOURCES", TaskKillingState = 2 => "TASK_KILLING_STATE", GpuResources = 3 => "GPU_RESOURCES", SharedResources = 4 => "SHARED_RESOURCES", PartitionAware = 5 => "PARTITION_AWARE", MultiRole = 6 => "MULTI_ROLE", ReservationRefinement = 7 => "RESERVATION_REFINEMENT", RegionAware = 8 => "REGION_AWARE" });
named_enum!(MasterCapabilityType { Unknown = 0 => "UNKNOWN", AgentUpdate = 1 => "AGENT_UPDATE", AgentDraining = 2 => "AGENT_DRAINING", QuotaV2 = 3 => "QUOTA_V2" });
named_enum!(OperationType { Unknown = 0 => "UNKNOWN", Launch = 1 => "LAUNCH", Reserve = 2 => "RESERVE", Unreserve = 3 => "UNRESERVE", Create = 4 => "CREATE", Destroy = 5 => "DESTROY", LaunchGroup = 6 => "LAUNCH_GROUP", GrowVolume = 11 => "GROW_VOLUME", ShrinkVolume = 12 => "SHRINK_VOLUME", CreateDisk = 13 => "CREATE_DISK", DestroyDisk = 14 => "DESTROY_DISK" });
named_enum!(OperationState { OperationUnsupported = 0 => "OPERATION_UNSUPPORTED", OperationPending = 1 => "OPERATION_PENDING", OperationFinished = 2 => "OPERATION_FINISHED", OperationFailed = 3 => "OPERATION_FAILED", OperationError = 4 => "OPERATION_ERROR", OperationDropped = 5 => "OPERATION_DROPPED", OperationUnreachable = 6 => "OPERATION_UNREACHABLE", OperationGoneByOperator = 7 => "OPERATION_GONE_BY_OPERATOR", OperationRecovering = 8 => "OPERATION_RECOVERING", OperationUnknown = 9 => "OPERATION_UNKNOWN" });
named_enum!(ValueType { Scalar = 0 => "SCALAR", Ranges = 1 => "RANGES", Set = 2 => "SET", Text = 3 => "TEXT" });
named_enum!(ReservationType { Unknown = 0 => "UNKNOWN", Static = 1 => "STATIC", Dynamic = 2 => "DYNAMIC" });
named_enum!(DiskSourceType { Unknown = 0 => "UNKNOWN", Path = 1 => "PATH", Mount = 2 => "MOUNT", Block = 3 => "BLOCK", Raw = 4 => "RAW" });
named_enum!(ExecutorType { Unknown = 0 => "UNKNOWN", Default = 1 => "DEFAULT", Custom = 2 => "CUSTOM" });
named_enum!(ContainerType { Docker = 1 => "DOCKER", Mesos = 2 => "MESOS" });
named_enum!(DockerNetwork { Host = 1 => "HOST", Bridge = 2 => "BRIDGE", None = 3 => "NONE", User = 4 => "USER" });
named_enum!(ImageType { Appc = 1 => "APPC", Docker = 2 => "DOCKER" });
named_enum!(VolumeMode { Rw = 1 => "RW", Ro = 2 => "RO" });
named_enum!(VolumeSourceType { Unknown = 0 => "UNKNOWN", DockerVolume = 1 => "DOCKER_VOLUME", SandboxPath = 2 => "SANDBOX_PATH", Secret = 3 => "SECRET", HostPath = 4 => "HOST_PATH", CsiVolume = 5 => "CSI_VOLUME" });
named_enum!(SandboxPathType { Unknown = 0 => "UNKNOWN", SelfPath = 1 => "SELF", Parent = 2 => "PARENT" });
named_enum!(MountPropagationMode { Unknown = 0 => "UNKNOWN", HostToContainer = 1 => "HOST_TO_CONTAINER", Bidirectional = 2 => "BIDIRECTIONAL" });
named_enum!(VariableType { Unknown = 0 => "UNKNOWN", Value = 1 => "VALUE", Secret = 2 => "SECRET" });
named_enum!(TaskState { TaskStaging = 6 => "TASK_STAGING", TaskStarting = 0 => "TASK_STARTING", TaskRunning = 1 => "TASK_RUNNING", TaskKilling = 8 => "TASK_KILLING", TaskFinished = 2 => "TASK_FINISHED", TaskFailed = 3 => "TASK_FAILED", TaskKilled = 4 => "TASK_KILLED", TaskError = 7 => "TASK_ERROR", TaskLost = 5 => "TASK_LOST", TaskDropped = 9 => "TASK_DROPPED", TaskUnreachable = 10 => "TASK_UNREACHABLE", TaskGone = 11 => "TASK_GONE", TaskGoneByOperator = 12 => "TASK_GONE_BY_OPERATOR", TaskUnknown = 13 => "TASK_UNKNOWN" });
named_enum!(TaskStatusSource { SourceMaster = 0 => "SOURCE_MASTER", SourceAgent = 1 => "SOURCE_AGENT", SourceExecutor = 2 => "SOURCE_EXECUTOR" });
named_enum!(TaskStatusReason { ReasonCommandExecutorFailed = 0 => "REASON_COMMAND_EXECUTOR_FAILED", ReasonExecutorTerminated = 1 => "REASON_EXECUTOR_TERMINATED", ReasonExecutorUnregistered = 2 => "REASON_EXECUTOR_UNREGISTERED", ReasonFrameworkRemoved = 3 => "REASON_FRAMEWORK_REMOVED", ReasonGcError = 4 => "REASON_GC_ERROR", ReasonInvalidFrameworkid = 5 => "REASON_INVALID_FRAMEWORKID", ReasonInvalidOffers = 6 => "REASON_INVALID_OFFERS", ReasonMasterDisconnected = 7 => "REASON_MASTER_DISCONNECTED", ReasonContainerLimitationMemory = 8 => "REASON_CONTAINER_LIMITATION_MEMORY", ReasonReconciliation = 9 => "REASON_RECONCILIATION", ReasonAgentDisconnected = 10 => "REASON_AGENT_DISCONNECTED", ReasonAgentRemoved = 11 => "REASON_AGENT_REMOVED", ReasonAgentRestarted = 12 => "REASON_AGENT_RESTARTED", ReasonAgentUnknown = 13 => "REASON_AGENT_UNKNOWN", ReasonTaskInvalid = 14 => "REASON_TASK_INVALID", ReasonTaskUnauthorized = 15 => "REASON_TASK_UNAUTHORIZED", ReasonTaskUnknown = 16 => "REASON_TASK_UNKNOWN", ReasonContainerPreempted = 17 => "REASON_CONTAINER_PREEMPTED", ReasonResourcesUnknown = 18 => "REASON_RESOURCES_UNKNOWN", ReasonContainerLimitation = 19 => "REASON_CONTAINER_LIMITATION", ReasonContainerLimitationDisk = 20 => "REASON_CONTAINER_LIMITATION_DISK", ReasonContainerLaunchFailed = 21 => "REASON_CONTAINER_LAUNCH_FAILED", ReasonContainerUpdateFailed = 22 => "REASON_CONTAINER_UPDATE_FAILED", ReasonExecutorRegistrationTimeout = 23 => "REASON_EXECUTOR_REGISTRATION_TIMEOUT", ReasonExecutorReregistrationTimeout = 24 => "REASON_EXECUTOR_REREGISTRATION_TIMEOUT", ReasonTaskGroupInvalid = 25 => "REASON_TASK_GROUP_INVALID", ReasonTaskGroupUnauthorized = 26 => "REASON_TASK_GROUP_UNAUTHORIZED", ReasonIoSwitchboardExited = 27 => "REASON_IO_SWITCHBOARD_EXITED", ReasonTaskCheckStatusUpdated = 28 => "REASON_TASK_CHECK_STATUS_UPDATED", ReasonTaskHealthCheckStatusUpdated = 29 => "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED", ReasonTaskKilledDuringLaunch = 30 => "REASON_TASK_KILLED_DURING_LAUNCH", ReasonAgentRemovedByOperator = 31 => "REASON_AGENT_REMOVED_BY_OPERATOR", ReasonAgentReregistered = 32 => "REASON_AGENT_REREGISTERED", ReasonMaxCompletionTimeReached = 33 => "REASON_MAX_COMPLETION_TIME_REACHED", ReasonAgentDraining = 34 => "REASON_AGENT_DRAINING" });
named_enum!(IpProtocol { Ipv4 = 1 => "IPv4", Ipv6 = 2 => "IPv6" });

/// `scheduler.Call`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Call {
    #[prost(message, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<Id>,
    #[prost(enumeration = "CallType", optional, tag = "2")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<CallType, _>",
        deserialize_with = "de_enum_opt::<CallType, _>"
    )]
    pub r#type: Option<i32>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Subscribe>,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept: Option<Accept>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
    #[prost(message, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill: Option<Kill>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<Shutdown>,
    #[prost(message, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<Acknowledge>,
    #[prost(message, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    #[prost(message, optional, tag = "15")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revive: Option<Roles>,
    #[prost(message, optional, tag = "16")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppress: Option<Roles>,
    #[prost(message, optional, tag = "13")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_inverse_offers: Option<InverseOffersAnswer>,
    #[prost(message, optional, tag = "14")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_inverse_offers: Option<InverseOffersAnswer>,
    #[prost(message, optional, tag = "17")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge_operation_status: Option<AcknowledgeOperationStatus>,
    #[prost(message, optional, tag = "18")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile_operations: Option<ReconcileOperations>,
    #[prost(message, optional, tag = "19")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_framework: Option<UpdateFramework>,
}

/// `scheduler.Call.AcceptInverseOffers` / `DeclineInverseOffers` (same fields).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseOffersAnswer {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inverse_offer_ids: Vec<Id>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `scheduler.Call.AcknowledgeOperationStatus`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct AcknowledgeOperationStatus {
    #[prost(message, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_provider_id: Option<Id>,
    #[prost(bytes = "vec", required, tag = "3")]
    #[serde(serialize_with = "ser_b64", deserialize_with = "de_b64")]
    pub uuid: Vec<u8>,
    #[prost(message, required, tag = "4")]
    pub operation_id: Id,
}

/// `scheduler.Call.ReconcileOperations`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileOperations {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<ReconcileOperation>,
}

/// `scheduler.Call.ReconcileOperations.Operation`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileOperation {
    #[prost(message, required, tag = "1")]
    pub operation_id: Id,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
}

/// `scheduler.Call.UpdateFramework`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateFramework {
    #[prost(message, required, tag = "1")]
    pub framework_info: FrameworkInfo,
    #[prost(string, repeated, tag = "2")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
}

/// `scheduler.Call.Subscribe`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscribe {
    #[prost(message, required, tag = "1")]
    pub framework_info: FrameworkInfo,
    #[prost(string, repeated, tag = "2")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
}

/// `scheduler.Call.Accept`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Accept {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offer_ids: Vec<Id>,
    #[prost(message, repeated, tag = "2")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `scheduler.Call.Decline`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Decline {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offer_ids: Vec<Id>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `scheduler.Call.Revive/Suppress`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Roles {
    #[prost(string, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `scheduler.Call.Kill`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Kill {
    #[prost(message, required, tag = "1")]
    pub task_id: Id,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

/// `scheduler.Call.Shutdown`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Shutdown {
    #[prost(message, required, tag = "1")]
    pub executor_id: Id,
    #[prost(message, required, tag = "2")]
    pub agent_id: Id,
}

/// `scheduler.Call.Acknowledge`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Acknowledge {
    #[prost(message, required, tag = "1")]
    pub agent_id: Id,
    #[prost(message, required, tag = "2")]
    pub task_id: Id,
    #[prost(bytes = "vec", required, tag = "3")]
    #[serde(serialize_with = "ser_b64", deserialize_with = "de_b64")]
    pub uuid: Vec<u8>,
}

/// `scheduler.Call.Reconcile`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Reconcile {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<ReconcileTask>,
}

/// `scheduler.Call.Reconcile.Task`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileTask {
    #[prost(message, required, tag = "1")]
    pub task_id: Id,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
}

/// `scheduler.Event`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    #[prost(enumeration = "EventType", optional, tag = "1")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<EventType, _>",
        deserialize_with = "de_enum_opt::<EventType, _>"
    )]
    pub r#type: Option<i32>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offers: Option<Offers>,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescind: Option<Rescind>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[prost(message, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEvent>,
    #[prost(message, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inverse_offers: Option<InverseOffers>,
    #[prost(message, optional, tag = "10")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescind_inverse_offer: Option<RescindInverseOffer>,
    #[prost(message, optional, tag = "11")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_operation_status: Option<UpdateOperationStatus>,
}

/// `scheduler.Event.InverseOffers`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseOffers {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inverse_offers: Vec<InverseOffer>,
}

/// `InverseOffer`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseOffer {
    #[prost(message, required, tag = "1")]
    pub id: Id,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[prost(message, required, tag = "3")]
    pub framework_id: Id,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    #[prost(message, required, tag = "5")]
    pub unavailability: Unavailability,
    #[prost(message, repeated, tag = "6")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

/// `Unavailability`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Unavailability {
    #[prost(message, required, tag = "1")]
    pub start: DurationInfo,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationInfo>,
}

/// `scheduler.Event.RescindInverseOffer`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct RescindInverseOffer {
    #[prost(message, required, tag = "1")]
    pub inverse_offer_id: Id,
}

/// `scheduler.Event.UpdateOperationStatus`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateOperationStatus {
    #[prost(message, required, tag = "1")]
    pub status: OperationStatus,
}

/// `OperationStatus`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct OperationStatus {
    #[prost(message, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<Id>,
    #[prost(enumeration = "OperationState", required, tag = "2")]
    #[serde(
        serialize_with = "ser_enum::<OperationState, _>",
        deserialize_with = "de_enum::<OperationState, _>"
    )]
    pub state: i32,
    #[prost(string, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[prost(message, repeated, tag = "4")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub converted_resources: Vec<Resource>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Uuid>,
    #[prost(message, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_provider_id: Option<Id>,
}

/// `UUID` (raw bytes).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Uuid {
    #[prost(bytes = "vec", required, tag = "1")]
    #[serde(serialize_with = "ser_b64", deserialize_with = "de_b64")]
    pub value: Vec<u8>,
}

/// `scheduler.Event.Subscribed`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscribed {
    #[prost(message, required, tag = "1")]
    pub framework_id: Id,
    #[prost(double, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<f64>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_info: Option<MasterInfo>,
}

/// `scheduler.Event.Offers`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Offers {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<Offer>,
}

/// `scheduler.Event.Rescind`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Rescind {
    #[prost(message, required, tag = "1")]
    pub offer_id: Id,
}

/// `scheduler.Event.Update`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Update {
    #[prost(message, required, tag = "1")]
    pub status: TaskStatus,
}

/// `scheduler.Event.Failure`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Failure {
    #[prost(message, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<Id>,
    #[prost(int32, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// `scheduler.Event.Error`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorEvent {
    #[prost(string, required, tag = "1")]
    pub message: String,
}

/// `FrameworkID/OfferID/AgentID/TaskID/ExecutorID/OperationID/ResourceProviderID`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Id {
    #[prost(string, required, tag = "1")]
    pub value: String,
}

/// `ContainerID`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerId {
    #[prost(string, required, tag = "1")]
    pub value: String,
    #[prost(message, optional, boxed, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Box<ContainerId>>,
}

/// `DurationInfo/TimeInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DurationInfo {
    #[prost(int64, required, tag = "1")]
    #[serde(deserialize_with = "de_int")]
    pub nanoseconds: i64,
}

/// `Label`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Label {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `Labels`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Labels {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
}

/// `Parameter`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Parameter {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, required, tag = "2")]
    pub value: String,
}

/// `Parameters`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Parameters {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameter: Vec<Parameter>,
}

/// `Filters`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Filters {
    #[prost(double, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}

/// `KillPolicy`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct KillPolicy {
    #[prost(message, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfo>,
}

/// `FrameworkInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameworkInfo {
    #[prost(string, required, tag = "1")]
    pub user: String,
    #[prost(string, required, tag = "2")]
    pub name: String,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[prost(double, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    #[prost(bool, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    #[prost(string, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[prost(string, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[prost(string, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[prost(string, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[prost(message, repeated, tag = "10")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<FrameworkCapability>,
    #[prost(message, optional, tag = "11")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[prost(string, repeated, tag = "12")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `FrameworkInfo.Capability`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameworkCapability {
    #[prost(enumeration = "FrameworkCapabilityType", optional, tag = "1")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<FrameworkCapabilityType, _>",
        deserialize_with = "de_enum_opt::<FrameworkCapabilityType, _>"
    )]
    pub r#type: Option<i32>,
}

/// `MasterInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct MasterInfo {
    #[prost(string, required, tag = "1")]
    pub id: String,
    #[prost(uint32, required, tag = "2")]
    pub ip: u32,
    #[prost(uint32, required, tag = "3")]
    pub port: u32,
    #[prost(string, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[prost(string, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[prost(string, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[prost(message, repeated, tag = "9")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<MasterCapability>,
}

/// `MasterInfo.Capability`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct MasterCapability {
    #[prost(enumeration = "MasterCapabilityType", optional, tag = "1")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<MasterCapabilityType, _>",
        deserialize_with = "de_enum_opt::<MasterCapabilityType, _>"
    )]
    pub r#type: Option<i32>,
}

/// `Address`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    #[prost(string, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[prost(int32, required, tag = "3")]
    pub port: i32,
}

/// `URL`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Url {
    #[prost(string, required, tag = "1")]
    pub scheme: String,
    #[prost(message, required, tag = "2")]
    pub address: Address,
    #[prost(string, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[prost(message, repeated, tag = "4")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<Parameter>,
    #[prost(string, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment: Option<String>,
}

/// `Value.Scalar`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Scalar {
    #[prost(double, required, tag = "1")]
    pub value: f64,
}

/// `Value.Range`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Range {
    #[prost(uint64, required, tag = "1")]
    #[serde(deserialize_with = "de_int")]
    pub begin: u64,
    #[prost(uint64, required, tag = "2")]
    #[serde(deserialize_with = "de_int")]
    pub end: u64,
}

/// `Value.Ranges`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Ranges {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub range: Vec<Range>,
}

/// `Value.Set`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Set {
    #[prost(string, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<String>,
}

/// `Value.Text`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Text {
    #[prost(string, required, tag = "1")]
    pub value: String,
}

/// `Attribute`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Attribute {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(enumeration = "ValueType", required, tag = "2")]
    #[serde(
        serialize_with = "ser_enum::<ValueType, _>",
        deserialize_with = "de_enum::<ValueType, _>"
    )]
    pub r#type: i32,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
    #[prost(message, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
}

/// `Resource`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(enumeration = "ValueType", required, tag = "2")]
    #[serde(
        serialize_with = "ser_enum::<ValueType, _>",
        deserialize_with = "de_enum::<ValueType, _>"
    )]
    pub r#type: i32,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
    #[prost(string, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskInfo>,
    #[prost(message, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationInfo>,
    #[prost(message, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocable: Option<RevocableInfo>,
    #[prost(message, optional, tag = "10")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedInfo>,
    #[prost(message, optional, tag = "11")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
    #[prost(message, optional, tag = "12")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<Id>,
    #[prost(message, repeated, tag = "13")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<ReservationInfo>,
}

/// `Resource.AllocationInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocationInfo {
    #[prost(string, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `Resource.ReservationInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ReservationInfo {
    #[prost(string, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[prost(string, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[prost(enumeration = "ReservationType", optional, tag = "4")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<ReservationType, _>",
        deserialize_with = "de_enum_opt::<ReservationType, _>"
    )]
    pub r#type: Option<i32>,
}

/// `Resource.RevocableInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct RevocableInfo {}

/// `Resource.SharedInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct SharedInfo {}

/// `Resource.DiskInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskInfo {
    #[prost(message, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<Volume>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<DiskSource>,
}

/// `Resource.DiskInfo.Persistence`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Persistence {
    #[prost(string, required, tag = "1")]
    pub id: String,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// `Resource.DiskInfo.Source`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskSource {
    #[prost(enumeration = "DiskSourceType", required, tag = "1")]
    #[serde(
        serialize_with = "ser_enum::<DiskSourceType, _>",
        deserialize_with = "de_enum::<DiskSourceType, _>"
    )]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<DiskSourcePath>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<DiskSourcePath>,
    #[prost(string, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Labels>,
    #[prost(string, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[prost(string, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
}

/// `Resource.DiskInfo.Source.Path/Mount`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskSourcePath {
    #[prost(string, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

/// `Volume`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    #[prost(string, required, tag = "1")]
    pub container_path: String,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[prost(enumeration = "VolumeMode", required, tag = "3")]
    #[serde(
        serialize_with = "ser_enum::<VolumeMode, _>",
        deserialize_with = "de_enum::<VolumeMode, _>"
    )]
    pub mode: i32,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<VolumeSource>,
}

/// `Volume.Source`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeSource {
    #[prost(enumeration = "VolumeSourceType", optional, tag = "1")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<VolumeSourceType, _>",
        deserialize_with = "de_enum_opt::<VolumeSourceType, _>"
    )]
    pub r#type: Option<i32>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_volume: Option<DockerVolume>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_path: Option<SandboxPath>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPath>,
}

/// `Volume.Source.DockerVolume`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerVolume {
    #[prost(string, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[prost(string, required, tag = "2")]
    pub name: String,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_options: Option<Parameters>,
}

/// `Volume.Source.SandboxPath`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxPath {
    #[prost(enumeration = "SandboxPathType", optional, tag = "1")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<SandboxPathType, _>",
        deserialize_with = "de_enum_opt::<SandboxPathType, _>"
    )]
    pub r#type: Option<i32>,
    #[prost(string, required, tag = "2")]
    pub path: String,
}

/// `Volume.Source.HostPath`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct HostPath {
    #[prost(string, required, tag = "1")]
    pub path: String,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_propagation: Option<MountPropagation>,
}

/// `MountPropagation`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPropagation {
    #[prost(enumeration = "MountPropagationMode", optional, tag = "1")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<MountPropagationMode, _>",
        deserialize_with = "de_enum_opt::<MountPropagationMode, _>"
    )]
    pub mode: Option<i32>,
}

/// `Image`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Image {
    #[prost(enumeration = "ImageType", required, tag = "1")]
    #[serde(
        serialize_with = "ser_enum::<ImageType, _>",
        deserialize_with = "de_enum::<ImageType, _>"
    )]
    pub r#type: i32,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerImage>,
    #[prost(bool, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
}

/// `Image.Docker`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerImage {
    #[prost(string, required, tag = "1")]
    pub name: String,
}

/// `Offer`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Offer {
    #[prost(message, required, tag = "1")]
    pub id: Id,
    #[prost(message, required, tag = "2")]
    pub framework_id: Id,
    #[prost(message, required, tag = "3")]
    pub agent_id: Id,
    #[prost(string, required, tag = "4")]
    pub hostname: String,
    #[prost(message, repeated, tag = "5")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[prost(message, repeated, tag = "6")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<Id>,
    #[prost(message, repeated, tag = "7")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    #[prost(message, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[prost(message, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailability: Option<Unavailability>,
    #[prost(message, optional, tag = "10")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

/// `Offer.Operation`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Operation {
    #[prost(enumeration = "OperationType", optional, tag = "1")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<OperationType, _>",
        deserialize_with = "de_enum_opt::<OperationType, _>"
    )]
    pub r#type: Option<i32>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_group: Option<LaunchGroup>,
    #[prost(message, optional, tag = "12")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserve: Option<Reserve>,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreserve: Option<Unreserve>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create: Option<VolumeOp>,
    #[prost(message, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroy: Option<VolumeOp>,
}

/// `Offer.Operation.Reserve`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Reserve {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[prost(message, repeated, tag = "2")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<Resource>,
}

/// `Offer.Operation.Unreserve`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Unreserve {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

/// `Offer.Operation.Create` and `Offer.Operation.Destroy` (same shape: `volumes` = 1).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeOp {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Resource>,
}

/// `Offer.Operation.Launch`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Launch {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub task_infos: Vec<TaskInfo>,
}

/// `Offer.Operation.LaunchGroup`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct LaunchGroup {
    #[prost(message, required, tag = "1")]
    pub executor: ExecutorInfo,
    #[prost(message, required, tag = "2")]
    pub task_group: TaskGroupInfo,
}

/// `TaskGroupInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskGroupInfo {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskInfo>,
}

/// `TaskInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskInfo {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(message, required, tag = "2")]
    pub task_id: Id,
    #[prost(message, required, tag = "3")]
    pub agent_id: Id,
    #[prost(message, repeated, tag = "4")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorInfo>,
    #[prost(bytes = "vec", optional, tag = "6")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_b64_opt",
        deserialize_with = "de_b64_opt"
    )]
    pub data: Option<Vec<u8>>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[prost(message, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[prost(message, optional, tag = "10")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[prost(message, optional, tag = "12")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    #[prost(message, optional, tag = "14")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_time: Option<DurationInfo>,
    #[prost(btree_map = "string, message", tag = "15")]
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub limits: std::collections::BTreeMap<String, Scalar>,
}

/// `ExecutorInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutorInfo {
    #[prost(message, required, tag = "1")]
    pub executor_id: Id,
    #[prost(bytes = "vec", optional, tag = "4")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_b64_opt",
        deserialize_with = "de_b64_opt"
    )]
    pub data: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "5")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[prost(message, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<Id>,
    #[prost(string, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "11")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[prost(message, optional, tag = "13")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period: Option<DurationInfo>,
    #[prost(message, optional, tag = "14")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[prost(enumeration = "ExecutorType", optional, tag = "15")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<ExecutorType, _>",
        deserialize_with = "de_enum_opt::<ExecutorType, _>"
    )]
    pub r#type: Option<i32>,
}

/// `CommandInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandInfo {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<Uri>,
    #[prost(message, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[prost(string, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[prost(string, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[prost(bool, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    #[prost(string, repeated, tag = "7")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
}

/// `CommandInfo.URI`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Uri {
    #[prost(string, required, tag = "1")]
    pub value: String,
    #[prost(bool, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    #[prost(bool, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[prost(string, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

/// `Environment`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
}

/// `Environment.Variable`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct Variable {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[prost(enumeration = "VariableType", optional, tag = "3")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<VariableType, _>",
        deserialize_with = "de_enum_opt::<VariableType, _>"
    )]
    pub r#type: Option<i32>,
}

/// `ContainerInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInfo {
    #[prost(enumeration = "ContainerType", required, tag = "1")]
    #[serde(
        serialize_with = "ser_enum::<ContainerType, _>",
        deserialize_with = "de_enum::<ContainerType, _>"
    )]
    pub r#type: i32,
    #[prost(message, repeated, tag = "2")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[prost(message, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    #[prost(string, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesos: Option<MesosInfo>,
}

/// `ContainerInfo.DockerInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerInfo {
    #[prost(string, required, tag = "1")]
    pub image: String,
    #[prost(enumeration = "DockerNetwork", optional, tag = "2")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<DockerNetwork, _>",
        deserialize_with = "de_enum_opt::<DockerNetwork, _>"
    )]
    pub network: Option<i32>,
    #[prost(bool, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[prost(message, repeated, tag = "5")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[prost(bool, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_pull_image: Option<bool>,
}

/// `ContainerInfo.MesosInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct MesosInfo {
    #[prost(message, optional, tag = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

/// `TaskStatus`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskStatus {
    #[prost(message, required, tag = "1")]
    pub task_id: Id,
    #[prost(enumeration = "TaskState", required, tag = "2")]
    #[serde(
        serialize_with = "ser_enum::<TaskState, _>",
        deserialize_with = "de_enum::<TaskState, _>"
    )]
    pub state: i32,
    #[prost(bytes = "vec", optional, tag = "3")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_b64_opt",
        deserialize_with = "de_b64_opt"
    )]
    pub data: Option<Vec<u8>>,
    #[prost(string, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    #[prost(double, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<Id>,
    #[prost(bool, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[prost(enumeration = "TaskStatusSource", optional, tag = "9")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<TaskStatusSource, _>",
        deserialize_with = "de_enum_opt::<TaskStatusSource, _>"
    )]
    pub source: Option<i32>,
    #[prost(enumeration = "TaskStatusReason", optional, tag = "10")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<TaskStatusReason, _>",
        deserialize_with = "de_enum_opt::<TaskStatusReason, _>"
    )]
    pub reason: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "11")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_b64_opt",
        deserialize_with = "de_b64_opt"
    )]
    pub uuid: Option<Vec<u8>>,
    #[prost(message, optional, tag = "12")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[prost(message, optional, tag = "13")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_status: Option<ContainerStatus>,
    #[prost(message, optional, tag = "14")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_time: Option<DurationInfo>,
}

/// `ContainerStatus`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStatus {
    #[prost(message, repeated, tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<NetworkInfo>,
    #[prost(uint32, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_pid: Option<u32>,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
}

/// `NetworkInfo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkInfo {
    #[prost(string, repeated, tag = "3")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[prost(message, repeated, tag = "5")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddress>,
    #[prost(string, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `NetworkInfo.IPAddress`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct IpAddress {
    #[prost(enumeration = "IpProtocol", optional, tag = "1")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_enum_opt::<IpProtocol, _>",
        deserialize_with = "de_enum_opt::<IpProtocol, _>"
    )]
    pub protocol: Option<i32>,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

impl Id {
    pub fn new(value: impl Into<String>) -> Id {
        Id {
            value: value.into(),
        }
    }
}

/// Decode one protobuf event record.
pub fn decode_event(bytes: &[u8]) -> Result<Event, prost::DecodeError> {
    prost::Message::decode(bytes)
}

/// Encode one protobuf call body.
pub fn encode_call(call: &Call) -> Vec<u8> {
    prost::Message::encode_to_vec(call)
}
