//! Ending a call and manager review (SPEC §9).
//!
//! `POST /api/v1/calls/{provider}/{call_id}/terminate` (agent or manager) claims the termination
//! first — a row unique per `(provider, call_id)` with a provisional hang-up state — and only
//! the request that created the row talks to the platform: it looks the call up (for the
//! caller), hangs up, links the caller's arrangement in force, then records the outcome and
//! enqueues the notification in one transaction before answering 201 (502 when the hang-up
//! failed). Every other press answers 200 with the same record, waiting briefly for a first
//! press still in flight. The platform work runs in its own task, so a request that times out
//! or is dropped does not leave the termination half-done.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::error::{ApiError, ApiResult, FieldError};
use crate::api::extract::{ApiJson, Principal};
use crate::api::query::{next_cursor, QueryFields};
use crate::domain::{CallId, Provider, TerminationId};
use crate::outbox::EVENT_TERMINATION_CREATED;
use crate::providers::{caller_number, HangupResult, ProviderError};
use crate::state::AppState;
use crate::store::{
    Claim, NewNotification, Review, ReviewOutcome, ReviewStatus, StoreError, Termination,
    TerminationFilter, TerminationOutcome, TerminationReason,
};

/// The longest free-text notes accepted (characters).
pub const MAX_NOTES_CHARS: usize = 4000;
/// How long the claiming request owns a provisional termination; after that (its process
/// died) the outbox worker or a later press finishes it. Longer than the worst case of a
/// lookup plus a hang-up with the platform clients' retries.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// `warned_at` may be this far ahead of our clock (the agent's clock may run fast).
const WARNED_AT_SKEW: chrono::Duration = chrono::Duration::seconds(60);
/// How often a second press looks at a first press still in flight.
const WAIT_POLL: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// JSON shapes
// ---------------------------------------------------------------------------------------------

/// The body of a terminate request (documentation shape; parsed leniently so that every
/// invalid field is reported at once).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TerminateRequest {
    pub reason: TerminationReason,
    /// `false` only with `threat_of_violence`.
    pub warning_given: bool,
    /// RFC 3339; not in the future.
    pub warned_at: Option<DateTime<Utc>>,
    /// Needed with `other`; at most 4000 characters.
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

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HangupView {
    /// `completed`, `already_ended` or `failed` (`pending` only while the first press is
    /// still talking to the platform).
    #[schema(example = "completed")]
    pub result: String,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    /// `pending` or `reviewed`.
    pub status: String,
    pub outcome: Option<ReviewOutcome>,
    pub reviewer: Option<String>,
    pub notes: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// A termination record (SPEC §9).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TerminationView {
    #[schema(example = "trm_01JF3Z8W6Q4E1V7B2N5K9M0P3R")]
    pub id: String,
    #[schema(example = "twilio")]
    pub provider: String,
    pub call_id: String,
    /// The caller's number (E.164), or null when the platform did not say.
    pub caller: Option<String>,
    pub arrangement_id: Option<String>,
    pub customer_ref: Option<String>,
    /// The name of the API token that ended the call.
    pub agent: String,
    pub reason: TerminationReason,
    pub warning_given: bool,
    pub warned_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    pub terminated_at: DateTime<Utc>,
    pub hangup: HangupView,
    pub police_report_required: bool,
    pub review: ReviewView,
}

impl From<&Termination> for TerminationView {
    fn from(t: &Termination) -> Self {
        TerminationView {
            id: t.id.to_string(),
            provider: t.provider.as_str().into(),
            call_id: t.call_id.to_string(),
            caller: t.caller.as_ref().map(|c| c.to_string()),
            arrangement_id: t.arrangement_id.as_ref().map(|a| a.to_string()),
            customer_ref: t.customer_ref.clone(),
            agent: t.agent.clone(),
            reason: t.reason,
            warning_given: t.warning_given,
            warned_at: t.warned_at,
            notes: t.notes.clone(),
            terminated_at: t.terminated_at,
            hangup: HangupView {
                result: t.hangup.map_or("pending", HangupResult::as_str).into(),
                detail: t.hangup_detail.clone(),
            },
            police_report_required: t.reason.police_report_required(),
            review: match &t.review {
                None => ReviewView {
                    status: "pending".into(),
                    outcome: None,
                    reviewer: None,
                    notes: None,
                    reviewed_at: None,
                },
                Some(r) => ReviewView {
                    status: "reviewed".into(),
                    outcome: Some(r.outcome),
                    reviewer: Some(r.reviewer.clone()),
                    notes: r.notes.clone(),
                    reviewed_at: Some(r.reviewed_at),
                },
            },
        }
    }
}

/// The notification POSTed to `notifications.webhook_url`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TerminationNotification {
    /// `termination.created`
    pub event: String,
    /// The termination id: receivers deduplicate on it.
    pub id: String,
    pub termination: TerminationView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TerminationList {
    pub items: Vec<TerminationView>,
    /// When the page is full: pass it as `before` to get the next page; otherwise null.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TerminationQuery {
    /// `pending` or `reviewed`.
    pub status: Option<String>,
    /// RFC 3339; terminated at or after.
    pub since: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Paging: the `next` value of the previous page (a termination id).
    pub before: Option<String>,
}

/// The body of a review (documentation shape).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReviewRequest {
    pub outcome: ReviewOutcome,
    /// At most 4000 characters.
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
            if s.chars().count() > MAX_NOTES_CHARS {
                errors.push(FieldError::new(
                    "notes",
                    format!("must be at most {MAX_NOTES_CHARS} characters"),
                ));
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

/// Check a terminate request against `now`, reporting every invalid field.
pub fn validate_terminate(
    body: &TerminateBody,
    now: DateTime<Utc>,
) -> Result<TerminateInput, Vec<FieldError>> {
    let mut errors = Vec::new();
    let reason = match body.reason.as_ref() {
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
    };
    let warning_given = match body.warning_given.as_ref() {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("warning_given", "is required"));
            None
        }
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(FieldError::new("warning_given", "must be true or false"));
            None
        }
    };
    if warning_given == Some(false)
        && reason.is_some_and(|r| r != TerminationReason::ThreatOfViolence)
    {
        errors.push(FieldError::new(
            "warning_given",
            "a call may be ended without a warning only for threat_of_violence",
        ));
    }
    let warned_at = match body.warned_at.as_ref() {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => {
                let t = t.with_timezone(&Utc);
                if t > now + WARNED_AT_SKEW {
                    errors.push(FieldError::new("warned_at", "must not be in the future"));
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
    };
    if warned_at.is_some() && warning_given == Some(false) {
        errors.push(FieldError::new(
            "warned_at",
            "must not be given when warning_given is false",
        ));
    }
    let notes = notes_field(body.notes.as_ref(), &mut errors);
    if reason == Some(TerminationReason::Other)
        && notes.is_none()
        && !errors.iter().any(|e| e.field == "notes")
    {
        errors.push(FieldError::new(
            "notes",
            "are required when the reason is other",
        ));
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

// ---------------------------------------------------------------------------------------------
// The flow
// ---------------------------------------------------------------------------------------------

fn lease_end(from: DateTime<Utc>) -> DateTime<Utc> {
    from + chrono::Duration::from_std(CLAIM_LEASE).unwrap_or_default()
}

/// A short description of a platform failure, safe to store and return (no URLs, no bodies).
fn failure_detail(e: &ProviderError) -> String {
    match e {
        ProviderError::Unreachable(_) => "the platform could not be reached".into(),
        ProviderError::Rejected { status, .. } => {
            format!("the platform refused the hang-up (HTTP {status})")
        }
        ProviderError::NotFound => "the platform does not know this call".into(),
    }
}

/// Talk to the platform for a claimed (provisional) termination and record the outcome with
/// its notification. Only the owner of the claim calls this.
pub async fn finish(state: &AppState, claimed: Termination) -> Result<Termination, StoreError> {
    let control = state.call_control(claimed.provider);
    let caller = match control.lookup_call(&claimed.call_id).await {
        Ok(Some(info)) => caller_number(&info.caller).cloned(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(
                provider = %claimed.provider,
                call_id = %claimed.call_id,
                error = %failure_detail(&e),
                "call lookup failed; the termination is recorded without the caller"
            );
            None
        }
    };
    // The platform could not say (Telnyx has no lookup; another instance saw the call): a call
    // under an arrangement is in the shared decision log.
    let caller = match caller {
        Some(n) => Some(n),
        None => state
            .store
            .logged_caller(claimed.provider, &claimed.call_id)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(call_id = %claimed.call_id, error = %e, "decision-log lookup failed");
                None
            }),
    };
    let (hangup, hangup_detail) = match control.hang_up(&claimed.call_id).await {
        Ok(result) => (result, None),
        Err(e) => {
            tracing::error!(
                provider = %claimed.provider,
                call_id = %claimed.call_id,
                error = %e,
                "hang-up failed"
            );
            (HangupResult::Failed, Some(failure_detail(&e)))
        }
    };
    metrics::counter!(
        "fairline_hangups_total",
        "provider" => claimed.provider.as_str(),
        "result" => hangup.as_str()
    )
    .increment(1);
    let arrangement = match &caller {
        None => None,
        Some(number) => match state.store.arrangements_for_number(number).await {
            Ok(list) => list
                .into_iter()
                .filter(|a| a.in_force_at(claimed.terminated_at))
                .max_by_key(|a| a.starts_at),
            Err(e) => {
                tracing::warn!(
                    caller = %number.masked(),
                    error = %e,
                    "could not look up the caller's arrangement for a termination"
                );
                None
            }
        },
    };
    let outcome = TerminationOutcome {
        caller,
        arrangement_id: arrangement.as_ref().map(|a| a.id.clone()),
        customer_ref: arrangement.map(|a| a.customer_ref),
        hangup,
        hangup_detail,
    };
    let notification = match state.config.notifications.webhook_url.as_deref() {
        Some(url) if !url.is_empty() => {
            let mut done = claimed.clone();
            done.caller = outcome.caller.clone();
            done.arrangement_id = outcome.arrangement_id.clone();
            done.customer_ref = outcome.customer_ref.clone();
            done.hangup = Some(outcome.hangup);
            done.hangup_detail = outcome.hangup_detail.clone();
            let body = TerminationNotification {
                event: EVENT_TERMINATION_CREATED.into(),
                id: done.id.to_string(),
                termination: TerminationView::from(&done),
            };
            let payload = serde_json::to_string(&body)
                .map_err(|e| StoreError::Internal(format!("encoding a notification: {e}")))?;
            Some(NewNotification {
                event: EVENT_TERMINATION_CREATED.into(),
                payload,
                due_at: Utc::now(),
            })
        }
        _ => None,
    };
    let stored = state
        .store
        .complete_termination(&claimed.id, &outcome, notification.as_ref())
        .await?;
    if notification.is_some() {
        state.outbox.wake();
    }
    tracing::info!(
        termination_id = %stored.id,
        provider = %stored.provider,
        call_id = %stored.call_id,
        caller = %stored.caller.as_ref().map_or_else(|| "unknown".to_string(), |c| c.masked()),
        reason = stored.reason.as_str(),
        hangup = hangup.as_str(),
        "call ended by staff"
    );
    Ok(stored)
}

/// Run [`finish`] in its own task, so that it completes even if the request is dropped.
async fn finish_detached(state: &AppState, claimed: Termination) -> ApiResult<Termination> {
    let s = state.clone();
    match tokio::spawn(async move { finish(&s, claimed).await }).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError::Internal(format!("termination task failed: {e}"))),
    }
}

/// Finish terminations left provisional past their lease (their process stopped half-way):
/// look the call up and hang up again (a call already over is `already_ended`), record, and
/// enqueue the notification. Returns how many were finished here.
pub async fn recover_stale(state: &AppState) -> Result<usize, StoreError> {
    let now = Utc::now();
    let mut finished = 0;
    for t in state.store.stale_terminations(now, 10).await? {
        if state
            .store
            .lease_stale_termination(&t.id, now, lease_end(now))
            .await?
        {
            tracing::warn!(
                termination_id = %t.id,
                provider = %t.provider,
                call_id = %t.call_id,
                "finishing a termination interrupted before its hang-up was recorded"
            );
            finish(state, t).await?;
            finished += 1;
        }
    }
    Ok(finished)
}

/// A press that did not create the row: wait for the first press to finish, briefly.
async fn settled(state: &AppState, mut t: Termination) -> ApiResult<Termination> {
    let budget = state
        .config
        .server
        .request_timeout
        .saturating_sub(Duration::from_millis(500))
        .max(Duration::from_millis(500));
    let deadline = tokio::time::Instant::now() + budget;
    while t.is_provisional() {
        let now = Utc::now();
        if t.claimed_until < now {
            // Its owner is gone: take it over, if nobody else does first.
            if state
                .store
                .lease_stale_termination(&t.id, now, lease_end(now))
                .await?
            {
                return finish_detached(state, t).await;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Conflict(
                "this call is being ended by an earlier request; try again in a moment".into(),
            ));
        }
        tokio::time::sleep(WAIT_POLL).await;
        t = state
            .store
            .get_termination(&t.id)
            .await?
            .ok_or_else(|| ApiError::Internal("a claimed termination vanished".into()))?;
    }
    Ok(t)
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
    params(
        ("provider" = String, Path, description = "twilio or telnyx"),
        ("call_id" = String, Path, description = "Twilio CallSid or Telnyx call_control_id"),
    ),
    request_body = TerminateRequest,
    responses(
        (status = 201, description = "Ended and recorded", body = TerminationView),
        (status = 200, description = "Already recorded (a repeated press)", body = TerminationView),
        (status = 502, description = "Recorded, but the platform could not hang up", body = TerminationView),
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
    Path((provider, call_id)): Path<(String, String)>,
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
    let claim = Termination {
        id: TerminationId::generate(),
        provider,
        call_id,
        caller: None,
        arrangement_id: None,
        customer_ref: None,
        agent: principal.name,
        reason: input.reason,
        warning_given: input.warning_given,
        warned_at: input.warned_at,
        notes: input.notes,
        terminated_at: now,
        hangup: None,
        hangup_detail: None,
        claimed_until: lease_end(Utc::now()),
        review: None,
    };
    match state.store.claim_termination(&claim).await? {
        Claim::Created(t) => {
            let done = finish_detached(&state, t).await?;
            let status = if done.hangup == Some(HangupResult::Failed) {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::CREATED
            };
            Ok(record_response(status, &done))
        }
        Claim::Existing(t) => {
            let done = settled(&state, t).await?;
            Ok(record_response(StatusCode::OK, &done))
        }
    }
}

fn parse_id(raw: &str) -> ApiResult<TerminationId> {
    TerminationId::parse(raw).map_err(|_| ApiError::NotFound("no such termination".into()))
}

#[utoipa::path(
    get,
    path = "/api/v1/terminations",
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
    Query(q): Query<TerminationQuery>,
) -> ApiResult<Json<TerminationList>> {
    principal.require_manager()?;
    let mut fields = QueryFields::new();
    let status = fields.choice(
        "status",
        q.status.as_deref(),
        &[
            ("pending", ReviewStatus::Pending),
            ("reviewed", ReviewStatus::Reviewed),
        ],
        "must be pending or reviewed",
    );
    let since = fields.instant("since", q.since.as_deref());
    let limit = fields.limit(q.limit);
    let before = fields.cursor(
        "before",
        q.before.as_deref(),
        TerminationId::parse,
        "must be a termination id (trm_…)",
    );
    fields.finish()?;
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
    Path(id): Path<String>,
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
    Path(id): Path<String>,
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
    let t = state
        .store
        .review_termination(&id, &review)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("no such termination".into()),
            other => other.into(),
        })?;
    tracing::info!(
        termination_id = %t.id,
        outcome = outcome.as_str(),
        "termination reviewed"
    );
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
