//! The Mesos v1 scheduler API backend: wire codecs (RecordIO framing, Mesos JSON, protobuf)
//! and the conversions between the protobuf messages and the cluster interface's types.

pub mod convert;
pub mod json;
pub mod proto;
pub mod recordio;
