//! Blocking queries: answer at once, or wait until the object's index passes `?index=`.

use std::time::Instant;

use super::error::ApiError;
use super::query::Query;
use crate::state::{State, StateHandle};

/// Run `read` against the state; with `?index=N&wait=D` re-run it each time the durable
/// index moves until `read` reports an index above N or the wait is over (then the
/// unchanged answer is returned, as Nomad does).
pub async fn read<T>(
    state: &StateHandle,
    query: &Query,
    mut read: impl FnMut(&State) -> Result<(T, u64), ApiError>,
) -> Result<(T, u64), ApiError> {
    let Some((min_index, wait)) = query.blocking()? else {
        return read(&state.read());
    };
    let deadline = Instant::now() + wait;
    loop {
        let (value, index) = read(&state.read())?;
        let now = Instant::now();
        if index > min_index || now >= deadline {
            return Ok((value, index));
        }
        state
            .wait_for_index(state.committed_index(), deadline - now)
            .await;
    }
}
