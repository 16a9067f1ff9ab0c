//! Ending a call and manager review (SPEC §9): the HTTP edge.
//!
//! `POST /api/v1/calls/{provider}/{call_id}/terminate` (agent or manager) checks the request and
//! hands it to the terminations service ([`crate::terminations::end_call`]), which claims,
//! hangs up and records: 201 when this press ended the call, 502 when it was recorded but the
//! hang-up failed, 200 with the same record for every later press. Managers list, read and
//! review terminations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::error::{ApiError, ApiResult, FieldError};
use crate::api::extract::{ApiJson, Principal};
use crate::api::query::{self, next_cursor};
use crate::api::rejection::{ApiPath, ApiQuery};
use crate::domain::{
    CallId, Provider, Review, ReviewOutcome, Termination, TerminationId, TerminationReason,
};
use crate::fields::{Fields, Optional};
use crate::state::AppState;
use crate::store::{ReviewStatus, StoreError, TerminationFilter};
use crate::terminations::{
    notes_length_rule, notes_required_rule, warned_at_rule, warned_without_warning_rule,
    warning_rule, EndCall, EndCallOutcome, RuleViolation, TerminationError, TerminationView,
};

// ---------------------------------------------------------------------------------------------
// JSON shapes
// ---------------------------------------------------------------------------------------------

/// The body of a terminate request (documentation shape; parsed leniently so that every
/// invalid field is reported at once).
///
/// `warning_given: false` is allowed only with `reason: threat_of_violence`; `reason: other`
/// needs `notes`; `warned_at` may not be in the future.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminateRequest {
    pub reason: TerminationReason,
    /// `false` only with `threat_of_violence`.
    pub warning_given: bool,
    /// RFC 3339; not in the future.
    pub warned_at: Option<DateTime<Utc>>,
    /// Needed with `other`; at most 4000 characters.
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateBody {
    #[serde(default)]
    pub reason: Option<Value>,
    #[serde(default)]
    pub warning_given: Option<Value>,
    #[serde(default)]
    pub warned_at: Option<Value>,
    #[serde(default)]
    pub notes: Option<Value>,
}

/// A validated terminate request.
#[derive(Clone, Debug, PartialEq)]
pub struct TerminateInput {
    pub reason: TerminationReason,
    pub warning_given: bool,
    pub warned_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TerminationList {
    pub items: Vec<TerminationView>,
    /// When the page is full: pass it as `before` to get the next page; otherwise null.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TerminationQuery {
    /// Whether the termination has been reviewed.
    #[param(schema_with = crate::api::schemas::review_status_filter)]
    pub status: Option<String>,
    /// RFC 3339; terminated at or after.
    #[param(schema_with = crate::api::schemas::instant_filter)]
    pub since: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Paging: the `next` value of the previous page (a termination id).
    #[param(schema_with = crate::api::schemas::termination_cursor)]
    pub before: Option<String>,
}

/// The body of a review (documentation shape).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub outcome: ReviewOutcome,
    /// At most 4000 characters.
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    #[serde(default)]
    pub outcome: Option<Value>,
    #[serde(default)]
    pub notes: Option<Value>,
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn notes_field(raw: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<String> {
    match raw {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if let Some(v) = notes_length_rule(s) {
                errors.push(v.into());
                None
            } else if s.trim().is_empty() {
                None
            } else {
                Some(s.clone())
            }
        }
        Some(_) => {
            errors.push(FieldError::new("notes", "must be a string"));
            None
        }
    }
}

fn reason_field(raw: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<TerminationReason> {
    match raw {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("reason", "is required"));
            None
        }
        Some(Value::String(s)) => match TerminationReason::parse(s) {
            Some(r) => Some(r),
            None => {
                errors.push(FieldError::new(
                    "reason",
                    format!(
                        "must be one of: {}",
                        TerminationReason::ALL
                            .map(TerminationReason::as_str)
                            .join(", ")
                    ),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("reason", "must be a string"));
            None
        }
    }
}

fn warning_given_field(raw: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<bool> {
    match raw {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("warning_given", "is required"));
            None
        }
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(FieldError::new("warning_given", "must be true or false"));
            None
        }
    }
}

/// `warned_at`: an RFC 3339 instant not after `now` (give or take the agent's clock skew).
fn warned_at_field(
    raw: Option<&Value>,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    match raw {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => {
                let t = t.with_timezone(&Utc);
                if let Some(v) = warned_at_rule(t, now) {
                    errors.push(v.into());
                    None
                } else {
                    Some(t)
                }
            }
            Err(_) => {
                errors.push(FieldError::new("warned_at", "must be an RFC 3339 instant"));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("warned_at", "must be an RFC 3339 instant"));
            None
        }
    }
}

/// Check a terminate request against `now`, reporting every invalid field.
pub fn validate_terminate(
    body: &TerminateBody,
    now: DateTime<Utc>,
) -> Result<TerminateInput, Vec<FieldError>> {
    let mut errors = Vec::new();
    let reason = reason_field(body.reason.as_ref(), &mut errors);
    let warning_given = warning_given_field(body.warning_given.as_ref(), &mut errors);
    if let (Some(r), Some(w)) = (reason, warning_given) {
        errors.extend(warning_rule(r, w).map(FieldError::from));
    }
    let warned_at = warned_at_field(body.warned_at.as_ref(), now, &mut errors);
    if let (Some(_), Some(w)) = (warned_at, warning_given) {
        errors.extend(warned_without_warning_rule(w).map(FieldError::from));
    }
    let notes = notes_field(body.notes.as_ref(), &mut errors);
    if let (Some(r), false) = (reason, errors.iter().any(|e| e.field == "notes")) {
        errors.extend(notes_required_rule(r, notes.as_deref()).map(FieldError::from));
    }
    match (reason, warning_given) {
        (Some(reason), Some(warning_given)) if errors.is_empty() => Ok(TerminateInput {
            reason,
            warning_given,
            warned_at,
            notes,
        }),
        _ => Err(errors),
    }
}

fn validate_review(body: &ReviewBody) -> Result<(ReviewOutcome, Option<String>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let outcome = match body.outcome.as_ref() {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("outcome", "is required"));
            None
        }
        Some(Value::String(s)) => match ReviewOutcome::parse(s) {
            Some(o) => Some(o),
            None => {
                errors.push(FieldError::new(
                    "outcome",
                    format!(
                        "must be one of: {}",
                        ReviewOutcome::ALL.map(ReviewOutcome::as_str).join(", ")
                    ),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("outcome", "must be a string"));
            None
        }
    };
    let notes = notes_field(body.notes.as_ref(), &mut errors);
    match outcome {
        Some(o) if errors.is_empty() => Ok((o, notes)),
        _ => Err(errors),
    }
}

impl From<RuleViolation> for FieldError {
    fn from(v: RuleViolation) -> Self {
        FieldError::new(v.field, v.message)
    }
}

impl From<TerminationError> for ApiError {
    fn from(e: TerminationError) -> Self {
        match e {
            TerminationError::Invalid(violations) => {
                ApiError::Validation(violations.into_iter().map(FieldError::from).collect())
            }
            TerminationError::Busy => ApiError::Conflict(e.to_string()),
            TerminationError::Store(e) => e.into(),
            TerminationError::Task(_) => ApiError::Internal(e.to_string()),
        }
    }
}

fn record_response(status: StatusCode, t: &Termination) -> Response {
    (status, Json(TerminationView::from(t))).into_response()
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

#[utoipa::path(
    post,
    path = "/api/v1/calls/{provider}/{call_id}/terminate",
    operation_id = "terminateCall",
    tag = "terminations",
    params(
        ("provider" = crate::api::schemas::ProviderName, Path, description = "The platform carrying the call; a platform that is not enabled answers 404"),
        ("call_id" = String, Path, description = "Twilio CallSid, Telnyx call_control_id or Vonage call uuid: 1 to 256 printable ASCII characters", min_length = 1, max_length = 256, pattern = "^[!-~]{1,256}$"),
    ),
    request_body = TerminateRequest,
    responses(
        (status = 201, description = "Ended and recorded", body = TerminationView),
        (status = 200, description = "Already recorded (a repeated press)", body = TerminationView),
        (status = 202, description = "Ended; the store is down, so the record (with `\"stored\": false`) is kept locally until it answers (SPEC §11)", body = TerminationView),
        (status = 502, description = "Recorded, but the platform could not be reached to hang up (SPEC §9): the body is the record, with hangup.result = failed", body = TerminationView),
        (status = 401, body = crate::api::error::Problem),
        (status = 404, description = "Unknown provider", body = crate::api::error::Problem),
        (status = 409, description = "An earlier press is still ending this call", body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn terminate(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((provider, call_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<TerminateBody>,
) -> ApiResult<Response> {
    let provider: Provider = provider
        .parse()
        .ok()
        .filter(|p| state.config.provider_enabled(*p))
        .ok_or_else(|| ApiError::NotFound("unknown or disabled provider".into()))?;
    let now = state.clock.now().trunc_subsecs(3);
    let mut errors = Vec::new();
    let call_id = match CallId::parse(&call_id) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(FieldError::new("call_id", e.0));
            None
        }
    };
    let input = match validate_terminate(&body, now) {
        Ok(i) => Some(i),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    let (Some(call_id), Some(input)) = (call_id, input) else {
        return Err(ApiError::Validation(errors));
    };
    tracing::Span::current().record("call_id", call_id.as_str());
    let request = EndCall {
        provider,
        call_id,
        agent: principal.name,
        reason: input.reason,
        warning_given: input.warning_given,
        warned_at: input.warned_at,
        notes: input.notes,
        at: now,
    };
    let outcome = crate::terminations::end_call(&state, request).await?;
    let status = match &outcome {
        EndCallOutcome::Ended(_) => StatusCode::CREATED,
        EndCallOutcome::NotEnded(_) => StatusCode::BAD_GATEWAY,
        EndCallOutcome::AlreadyRecorded(_) => StatusCode::OK,
        EndCallOutcome::Spooled { termination, first } => {
            let failed = termination.hangup == Some(crate::domain::HangupResult::Failed);
            let status = if *first && failed {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::ACCEPTED
            };
            let body = crate::spool::spooled_body(termination);
            return Ok((status, Json(body)).into_response());
        }
    };
    Ok(record_response(status, outcome.termination()))
}

fn parse_id(raw: &str) -> ApiResult<TerminationId> {
    TerminationId::parse(raw).map_err(|_| ApiError::NotFound("no such termination".into()))
}

#[utoipa::path(
    get,
    path = "/api/v1/terminations",
    operation_id = "listTerminations",
    tag = "terminations",
    params(TerminationQuery),
    responses(
        (status = 200, body = TerminationList),
        (status = 401, body = crate::api::error::Problem),
        (status = 403, body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<TerminationQuery>,
) -> ApiResult<Json<TerminationList>> {
    principal.require_manager()?;
    let params = query::params(&q);
    let mut fields = Fields::query(&params);
    let status = fields.choice(
        "status",
        Optional,
        &[
            ("pending", ReviewStatus::Pending),
            ("reviewed", ReviewStatus::Reviewed),
        ],
        "must be pending or reviewed",
    );
    let since = fields.instant("since", Optional);
    let limit = query::limit(&mut fields);
    let before = fields.parsed(
        "before",
        Optional,
        TerminationId::parse,
        "must be a termination id (trm_…)",
    );
    query::finish(fields)?;
    let rows = state
        .store
        .list_terminations(&TerminationFilter {
            status,
            since,
            limit,
            before,
        })
        .await?;
    let next = next_cursor(&rows, limit, |t| t.id.to_string());
    Ok(Json(TerminationList {
        items: rows.iter().map(TerminationView::from).collect(),
        next,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/terminations/{id}",
    operation_id = "getTermination",
    tag = "terminations",
    params(("id" = String, Path, description = "trm_…")),
    responses(
        (status = 200, body = TerminationView),
        (status = 401, body = crate::api::error::Problem),
        (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TerminationView>> {
    principal.require_manager()?;
    let id = parse_id(&id)?;
    let t = state
        .store
        .get_termination(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such termination".into()))?;
    Ok(Json(TerminationView::from(&t)))
}

#[utoipa::path(
    post,
    path = "/api/v1/terminations/{id}/review",
    operation_id = "reviewTermination",
    tag = "terminations",
    params(("id" = String, Path, description = "trm_…")),
    request_body = ReviewRequest,
    responses(
        (status = 200, body = TerminationView),
        (status = 401, body = crate::api::error::Problem),
        (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
        (status = 409, description = "Already reviewed", body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn review(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> ApiResult<Json<TerminationView>> {
    principal.require_manager()?;
    let id = parse_id(&id)?;
    let (outcome, notes) = validate_review(&body).map_err(ApiError::Validation)?;
    let review = Review {
        outcome,
        reviewer: principal.name,
        notes,
        reviewed_at: state.clock.now().trunc_subsecs(3),
    };
    let t = crate::terminations::review(&state, &id, &review)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("no such termination".into()),
            other => other.into(),
        })?;
    Ok(Json(TerminationView::from(&t)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> TerminateBody {
        serde_json::from_value(v).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-04-14T10:00:00Z".parse().unwrap()
    }

    fn fields(r: Result<TerminateInput, Vec<FieldError>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_valid_request_passes() {
        let i = validate_terminate(
            &body(json!({"reason": "abusive", "warning_given": true,
                         "warned_at": "2026-04-14T09:59:00Z", "notes": "shouting"})),
            now(),
        )
        .unwrap();
        assert_eq!(i.reason, TerminationReason::Abusive);
        assert!(i.warning_given);
        assert_eq!(i.notes.as_deref(), Some("shouting"));
        assert_eq!(i.warned_at, Some("2026-04-14T09:59:00Z".parse().unwrap()));
    }

    #[test]
    fn no_warning_only_for_threats() {
        assert!(validate_terminate(
            &body(json!({"reason": "threat_of_violence", "warning_given": false})),
            now()
        )
        .is_ok());
        assert_eq!(
            fields(validate_terminate(
                &body(json!({"reason": "swearing", "warning_given": false})),
                now()
            )),
            vec!["warning_given"]
        );
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let f = fields(validate_terminate(
            &body(json!({"reason": "rude", "warning_given": "yes",
                         "warned_at": "yesterday", "notes": "x".repeat(4001)})),
            now(),
        ));
        assert_eq!(f, vec!["reason", "warning_given", "warned_at", "notes"]);
        let f = fields(validate_terminate(&body(json!({})), now()));
        assert_eq!(f, vec!["reason", "warning_given"]);
    }

    #[test]
    fn other_needs_notes_and_warned_at_is_not_in_the_future() {
        assert_eq!(
            fields(validate_terminate(
                &body(json!({"reason": "other", "warning_given": true, "notes": "  "})),
                now()
            )),
            vec!["notes"]
        );
        assert_eq!(
            fields(validate_terminate(
                &body(json!({"reason": "abusive", "warning_given": true,
                             "warned_at": "2026-04-14T10:05:00Z"})),
                now()
            )),
            vec!["warned_at"]
        );
        // 4000 characters (not bytes) are fine.
        assert!(validate_terminate(
            &body(json!({"reason": "other", "warning_given": true, "notes": "é".repeat(4000)})),
            now()
        )
        .is_ok());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_value::<TerminateBody>(json!({"reasons": "x"})).is_err());
    }
}
