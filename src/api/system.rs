//! `PUT /v1/system/gc`: collect every dead child now, whatever its age (Nomad's forced
//! garbage collection). The timer-driven collection is `crate::gc::spawn`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use super::{ApiError, AppState};

pub async fn gc(State(app): State<AppState>) -> Result<StatusCode, ApiError> {
    let cluster = app.cluster()?;
    crate::gc::collect(
        &app.state,
        Duration::ZERO,
        cluster.sandboxes.as_ref(),
        app.clock.now_ns(),
    )
    .await;
    Ok(StatusCode::OK)
}
