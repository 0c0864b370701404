//! The domain model: jobs (templates), dispatches (children) and their states.
//!
//! Plain data and the rules that need nothing but the data (canonical defaults, legal state
//! transitions, child ID format). No I/O, no locking, no HTTP.

pub mod dispatch;
pub mod drivers;
pub mod job;
pub mod plan;
pub mod run;

pub use dispatch::{Dispatch, DispatchStatus};
pub use job::{Job, Meta};
pub use run::{Slot, TaskRun};

use serde::{Deserialize, Deserializer};

/// Go's JSON decoder treats `null` as "leave the default": do the same for a field.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
