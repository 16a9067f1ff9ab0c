//! `POST /api/v1/evaluate` (SPEC §6): the decision for a caller at an instant, no side effects.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, Principal};
use crate::domain::CallerId;
use crate::service::{EvaluateError, Evaluation};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// The caller number as the platform would send it.
    pub from: String,
    /// RFC 3339 instant; default now.
    pub at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    post,
    path = "/api/v1/evaluate",
    operation_id = "evaluateCall",
    tag = "evaluate",
    request_body = EvaluateRequest,
    responses(
        (status = 200, description = "The decision", body = Evaluation),
        (status = 401, description = "No or unknown token", body = crate::api::error::Problem),
        (status = 415, description = "Not JSON", body = crate::api::error::Problem),
        (status = 422, description = "Invalid fields", body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn evaluate(
    State(state): State<AppState>,
    _principal: Principal,
    ApiJson(req): ApiJson<EvaluateRequest>,
) -> ApiResult<Json<Evaluation>> {
    let at = req.at.unwrap_or_else(|| state.clock.now());
    let caller = CallerId::classify(&req.from);
    match state.evaluate(&caller, at).await {
        Ok(e) => Ok(Json(e)),
        Err(EvaluateError::Store(e)) => Err(ApiError::from(e)),
    }
}
