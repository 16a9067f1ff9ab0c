//! `GET /api/v1/decisions` (SPEC §6, manager): the decision log of calls under an arrangement.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::error::ApiResult;
use crate::api::extract::Principal;
use crate::api::query;
use crate::api::rejection::ApiQuery;
use crate::fields::{Fields, Optional};
use crate::state::AppState;
use crate::store::{DecisionFilter, DecisionLogEntry};

#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionQuery {
    /// A phone number in any common form; normalised.
    #[param(format = "phone")]
    pub phone: Option<String>,
    /// RFC 3339; inclusive.
    #[param(schema_with = crate::api::schemas::instant_filter)]
    pub since: Option<String>,
    /// RFC 3339; exclusive.
    #[param(schema_with = crate::api::schemas::instant_filter)]
    pub until: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    #[schema(example = "twilio")]
    pub provider: String,
    pub call_id: String,
    pub number: String,
    pub decided_at: DateTime<Utc>,
    #[schema(example = "refuse")]
    pub outcome: String,
    #[schema(example = "outside_window")]
    pub reason: String,
    pub arrangement_id: Option<String>,
    pub arrangement_version: Option<i64>,
    pub route_to: Option<String>,
    pub next_permitted_at: Option<DateTime<Utc>>,
    /// store | cache | stale_cache | failure_default
    pub source: String,
    pub counted: bool,
    pub final_status: Option<String>,
    pub duration_seconds: Option<i64>,
}

impl From<&DecisionLogEntry> for DecisionView {
    fn from(e: &DecisionLogEntry) -> Self {
        DecisionView {
            provider: e.provider.as_str().into(),
            call_id: e.call_id.to_string(),
            number: e.number.to_string(),
            decided_at: e.decided_at,
            outcome: e.decision.outcome.as_str().into(),
            reason: e.decision.reason.as_str().into(),
            arrangement_id: e.decision.arrangement_id.as_ref().map(|a| a.to_string()),
            arrangement_version: e.decision.arrangement_version,
            route_to: e.decision.route_to.as_ref().map(|s| s.to_string()),
            next_permitted_at: e.decision.next_permitted_at,
            source: e.source.as_str().into(),
            counted: e.counted,
            final_status: e.final_status.clone(),
            duration_seconds: e.duration_seconds,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionList {
    pub items: Vec<DecisionView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/decisions",
    operation_id = "listDecisions",
    tag = "decisions",
    params(DecisionQuery),
    responses(
        (status = 200, body = DecisionList),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<DecisionQuery>,
) -> ApiResult<Json<DecisionList>> {
    principal.require_manager()?;
    let params = query::params(&q);
    let mut fields = Fields::query(&params);
    let phone = fields.phone("phone", Optional);
    let since = fields.instant("since", Optional);
    let until = fields.instant("until", Optional);
    let limit = query::limit(&mut fields);
    query::finish(fields)?;
    let rows = state
        .store
        .list_decisions(&DecisionFilter {
            phone,
            since,
            until,
            limit,
        })
        .await?;
    Ok(Json(DecisionList {
        items: rows.iter().map(DecisionView::from).collect(),
    }))
}
