//! `PUT /v1/system/gc`: collect every dead child now, whatever its age (Nomad's forced
//! garbage collection). The timer-driven collection is `crate::gc::spawn`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use super::{ApiError, AppState};

/// Answers 200 with the index after the collection (`X-Nomad-Index`; a standby that
/// forwarded the request waits for its copy to reach it).
pub async fn gc(
    State(app): State<AppState>,
) -> Result<(StatusCode, [(&'static str, String); 1]), ApiError> {
    let cluster = app.cluster()?;
    crate::gc::collect(
        &app.state,
        Duration::ZERO,
        cluster.sandboxes.as_ref(),
        app.clock.now_ns(),
    )
    .await;
    Ok((
        StatusCode::OK,
        [(
            "x-nomad-index",
            app.state.committed_index().max(1).to_string(),
        )],
    ))
}
