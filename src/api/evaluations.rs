//! `/v1/evaluations` and `/v1/evaluation/<id>[/allocations]`.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::blocking;
use super::error::ApiError;
use super::query::{json_reply, Query};
use super::wire::{Allocation, Evaluation};
use super::AppState;

pub async fn list(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref());
    let prefix = query.get("prefix").unwrap_or_default().to_string();
    let per_page: usize = query
        .get("per_page")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    let (evals, index) = blocking::read(&app.state, &query, |state| {
        let mut evals: Vec<Evaluation> = state
            .all_evals()
            .filter(|(id, _)| prefix.is_empty() || id.to_string().starts_with(&prefix))
            .map(|(_, d)| Evaluation::of_dispatch(d))
            .collect();
        evals.sort_by_key(|e| e.create_index);
        evals.truncate(per_page);
        Ok((evals, state.index()))
    })
    .await?;
    Ok(json_reply(&evals, index, query.flag("pretty")?))
}

pub async fn route(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref());
    let (id, allocations) = match rest.strip_suffix("/allocations") {
        Some(id) => (id, true),
        None => (rest.as_str(), false),
    };
    let eval_id =
        uuid::Uuid::parse_str(id).map_err(|_| ApiError::NotFound("eval not found".into()))?;
    let ((eval, allocs), index) = blocking::read(&app.state, &query, |state| {
        let d = state
            .dispatch_of_eval(&eval_id)
            .ok_or_else(|| ApiError::NotFound("eval not found".into()))?;
        Ok((
            (Evaluation::of_dispatch(d), Allocation::of_dispatch(d)),
            d.modify_index,
        ))
    })
    .await?;
    if allocations {
        return Ok(json_reply(&allocs, index, query.flag("pretty")?));
    }
    Ok(json_reply(&eval, index, query.flag("pretty")?))
}
