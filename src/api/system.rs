//! `PUT /v1/system/gc`: collect every dead child now, whatever its age (Nomad's forced
//! garbage collection). The timer-driven collection is `crate::gc::spawn`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

pub async fn gc(State(app): State<AppState>) -> StatusCode {
    let sandboxes = app.cluster.sandboxes.as_ref();
    crate::gc::collect(&app.state, Duration::ZERO, sandboxes, app.clock.now_ns()).await;
    StatusCode::OK
}
