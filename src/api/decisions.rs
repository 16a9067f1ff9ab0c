//! `GET /api/v1/decisions` (SPEC §6, manager): the decision log of calls under an arrangement.

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::error::{ApiError, ApiResult, FieldError};
use crate::api::extract::Principal;
use crate::domain::PhoneNumber;
use crate::state::AppState;
use crate::store::{DecisionFilter, DecisionLogEntry};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DecisionQuery {
    pub phone: Option<String>,
    /// RFC 3339; inclusive.
    pub since: Option<String>,
    /// RFC 3339; exclusive.
    pub until: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
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

fn instant(raw: Option<&str>, field: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let raw = raw.filter(|s| !s.is_empty())?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(field, "must be an RFC 3339 instant"));
            None
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/decisions",
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
    Query(q): Query<DecisionQuery>,
) -> ApiResult<Json<DecisionList>> {
    principal.require_manager()?;
    let mut errors = Vec::new();
    let phone = match q.phone.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => match PhoneNumber::parse(raw) {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(FieldError::new("phone", "is not a phone number"));
                None
            }
        },
    };
    let since = instant(q.since.as_deref(), "since", &mut errors);
    let until = instant(q.until.as_deref(), "until", &mut errors);
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        errors.push(FieldError::new("limit", "must be from 1 to 1000"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
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
