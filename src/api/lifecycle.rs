//! Reviews and appeals of arrangements (SPEC §13). Manager tokens only. Every invalid field is
//! reported at once; each write changes the arrangement's version in the same transaction and
//! drops the arrangement's numbers from the cache (other instances hear of it through the
//! store's change notifications).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, Principal};
use crate::api::query;
use crate::api::rejection::{ApiPath, ApiQuery};
use crate::domain::{AppealId, Arrangement, ArrangementId, ReviewId};
use crate::fields::{Fields, Optional, Required};
use crate::state::AppState;
use crate::store::lifecycle::{
    Appeal, AppealDecision, AppealOutcome, AppealStatus, ArrangementReview, LifecycleError,
    ReviewDecision,
};
use crate::store::StoreError;

const MAX_TEXT: usize = 4000;

/// A review as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArrangementReviewView {
    #[schema(example = "rev_01JF0000000000000000000000")]
    pub id: String,
    pub arrangement_id: String,
    /// The arrangement's version this review made.
    pub arrangement_version: i64,
    #[schema(example = "continue")]
    pub outcome: ReviewDecision,
    pub notes: Option<String>,
    pub next_review_due: Option<NaiveDate>,
    pub reviewer: String,
    pub reviewed_at: DateTime<Utc>,
}

impl From<&ArrangementReview> for ArrangementReviewView {
    fn from(r: &ArrangementReview) -> Self {
        ArrangementReviewView {
            id: r.id.to_string(),
            arrangement_id: r.arrangement_id.to_string(),
            arrangement_version: r.arrangement_version,
            outcome: r.outcome,
            notes: r.notes.clone(),
            next_review_due: r.next_review_due,
            reviewer: r.reviewer.clone(),
            reviewed_at: r.reviewed_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArrangementReviewList {
    pub items: Vec<ArrangementReviewView>,
}

pub use crate::views::AppealView;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppealList {
    pub items: Vec<AppealView>,
}

/// `POST …/reviews` body (documentation; the handler reads the JSON field by field).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrangementReviewRequest {
    #[schema(value_type = ReviewOutcomeName, example = "continue")]
    pub outcome: String,
    pub notes: Option<String>,
    /// Required with `continue`; on or before the arrangement's `ends_at`.
    pub next_review_due: Option<NaiveDate>,
}

/// `POST …/appeals` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealRequest {
    /// When the appeal was received (default: now; not in the future).
    pub received_at: Option<DateTime<Utc>>,
    pub grounds: String,
}

/// `POST /api/v1/appeals/{id}/decision` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealDecisionRequest {
    #[schema(value_type = AppealOutcomeName, example = "dismissed")]
    pub outcome: String,
    pub decided_by: String,
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppealQuery {
    /// open | decided (empty: either)
    #[param(schema_with = crate::api::schemas::appeal_status_filter)]
    pub status: Option<String>,
    /// Only the appeals against this arrangement (arr_…).
    #[param(schema_with = crate::api::schemas::arrangement_cursor)]
    pub arrangement_id: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Reading bodies
// ---------------------------------------------------------------------------------------------

/// A request body read with the one field reader ([`crate::fields::Fields`]); `known` are
/// its fields, any other is reported as unknown.
struct Body<'a> {
    fields: Fields<'a>,
    known: Vec<&'static str>,
}

impl<'a> Body<'a> {
    fn new(body: &'a Value, known: &[&'static str]) -> Result<Self, ApiError> {
        let fields = Fields::body(body).map_err(|p| ApiError::Validation(vec![p.into()]))?;
        Ok(Body {
            fields,
            known: known.to_vec(),
        })
    }
    fn err(&mut self, field: &str, message: impl Into<String>) {
        self.fields.problem(field, message);
    }
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.fields.peek(key)
    }
    fn present(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    fn text(&mut self, key: &str, required: bool) -> Option<String> {
        let need = if required { Required } else { Optional };
        self.fields.text(key, need, MAX_TEXT)
    }
    fn choice<T>(&mut self, key: &str, parse: fn(&str) -> Option<T>, words: &str) -> Option<T> {
        match self.get(key) {
            None => {
                self.err(key, format!("is required: {words}"));
                None
            }
            Some(v) => {
                let parsed = v.as_str().and_then(parse);
                if parsed.is_none() {
                    self.err(key, format!("must be one of {words}"));
                }
                parsed
            }
        }
    }
    fn finish(mut self) -> ApiResult<()> {
        self.fields.skip(&self.known);
        ApiError::check(self.fields.finish())
    }
}

fn arrangement_id(raw: &str) -> ApiResult<ArrangementId> {
    ArrangementId::parse(raw).map_err(|_| ApiError::NotFound(format!("no arrangement {raw:?}")))
}

fn appeal_id(raw: &str) -> ApiResult<AppealId> {
    AppealId::parse(raw).map_err(|_| ApiError::NotFound(format!("no appeal {raw:?}")))
}

async fn arrangement(state: &AppState, id: &ArrangementId) -> ApiResult<Arrangement> {
    state
        .store
        .get_arrangement(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no arrangement {id}")))
}

fn lifecycle_error(e: LifecycleError, not_found: &str) -> ApiError {
    match e {
        LifecycleError::Store(StoreError::NotFound) => ApiError::NotFound(not_found.to_owned()),
        LifecycleError::Store(other) => other.into(),
        LifecycleError::Revoked => {
            ApiError::Conflict("the arrangement is revoked: it can no longer be changed".into())
        }
        LifecycleError::AlreadyDecided => {
            ApiError::Conflict("this appeal has already been decided".into())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The operations (no HTTP): the handlers below and the console's pages both call these
// ---------------------------------------------------------------------------------------------

/// `next_review_due` goes with `continue` only, on or before the arrangement's end (local).
fn check_next_review(
    b: &mut Body<'_>,
    outcome: Option<ReviewDecision>,
    next_review_due: Option<NaiveDate>,
    current: &Arrangement,
    state: &AppState,
) {
    match outcome {
        Some(ReviewDecision::Continue) => {
            if !b.present("next_review_due") {
                b.err(
                    "next_review_due",
                    "is required when the outcome is continue",
                );
            }
            if let Some(d) = next_review_due {
                let ends_local = current
                    .ends_at
                    .with_timezone(&state.calendar.tz)
                    .date_naive();
                if d > ends_local {
                    b.err("next_review_due", "must be on or before ends_at");
                }
            }
        }
        Some(_) if b.present("next_review_due") => {
            b.err(
                "next_review_due",
                "is only given when the outcome is continue",
            );
        }
        _ => {}
    }
}

/// Record a review of an arrangement (SPEC §13) from the API's JSON body, as `actor`.
pub async fn record_review(
    state: &AppState,
    id: &ArrangementId,
    body: &Value,
    actor: &str,
) -> ApiResult<ArrangementReview> {
    let current = arrangement(state, id).await?;
    let mut b = Body::new(body, &["outcome", "notes", "next_review_due"])?;
    let outcome = b.choice("outcome", ReviewDecision::parse, "continue, vary, end");
    let notes = b.text("notes", false);
    let next_review_due = match b.get("next_review_due") {
        None => None,
        Some(v) => match v
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        {
            Some(d) => Some(d),
            None => {
                b.err("next_review_due", "must be a date YYYY-MM-DD");
                None
            }
        },
    };
    check_next_review(&mut b, outcome, next_review_due, &current, state);
    b.finish()?;
    let Some(outcome) = outcome else {
        return Err(ApiError::Internal(
            "review validation passed without an outcome".into(),
        ));
    };
    let review = ArrangementReview {
        id: ReviewId::generate(),
        arrangement_id: id.clone(),
        arrangement_version: 0,
        outcome,
        notes: notes.clone(),
        next_review_due,
        reviewer: actor.to_owned(),
        reviewed_at: state.clock.now(),
    };
    let end_reason = match &notes {
        Some(n) => format!("Ended at review {}: {n}", review.id),
        None => format!("Ended at review {}", review.id),
    };
    let (saved, a) = state
        .store
        .record_review(&review, &end_reason)
        .await
        .map_err(|e| lifecycle_error(e, &format!("no arrangement {id}")))?;
    state.cache.invalidate(&a.phone_numbers).await;
    tracing::info!(
        arrangement_id = %a.id,
        review_id = %saved.id,
        outcome = saved.outcome.as_str(),
        version = a.version,
        actor = %actor,
        "arrangement reviewed"
    );
    Ok(saved)
}

/// Record an appeal against an arrangement (SPEC §13) from the API's JSON body, as `actor`.
pub async fn record_appeal(
    state: &AppState,
    id: &ArrangementId,
    body: &Value,
    actor: &str,
) -> ApiResult<Appeal> {
    let now = state.clock.now();
    let mut b = Body::new(body, &["received_at", "grounds"])?;
    let grounds = b.text("grounds", true);
    let received_at = match b.get("received_at") {
        None => Some(now),
        Some(v) => match v.as_str().map(DateTime::parse_from_rfc3339) {
            Some(Ok(t)) if t.with_timezone(&Utc) > now + chrono::Duration::minutes(5) => {
                b.err("received_at", "must not be in the future");
                None
            }
            Some(Ok(t)) => Some(t.with_timezone(&Utc)),
            _ => {
                b.err(
                    "received_at",
                    "must be an RFC 3339 instant, e.g. 2026-12-01T09:30:00Z",
                );
                None
            }
        },
    };
    b.finish()?;
    let (Some(grounds), Some(received_at)) = (grounds, received_at) else {
        return Err(ApiError::Internal(
            "appeal validation passed with a missing field".into(),
        ));
    };
    let appeal = Appeal {
        id: AppealId::generate(),
        arrangement_id: id.clone(),
        received_at,
        grounds,
        recorded_by: actor.to_owned(),
        created_at: now,
        decision: None,
    };
    let (saved, a) = state
        .store
        .record_appeal(&appeal)
        .await
        .map_err(|e| lifecycle_error(e, &format!("no arrangement {id}")))?;
    state.cache.invalidate(&a.phone_numbers).await;
    if let Err(e) = crate::notices::queue_appeal_created(state, &saved, &a).await {
        // The daily sweep queues it later; the appeal itself is recorded.
        tracing::warn!(error = %e, appeal_id = %saved.id, "could not queue appeal.created now");
    }
    tracing::info!(
        arrangement_id = %a.id,
        appeal_id = %saved.id,
        version = a.version,
        actor = %actor,
        "appeal recorded"
    );
    Ok(saved)
}

/// Decide an appeal (SPEC §13) from the API's JSON body, once, as `actor`.
pub async fn decide(
    state: &AppState,
    id: &AppealId,
    body: &Value,
    actor: &str,
) -> ApiResult<Appeal> {
    let mut b = Body::new(body, &["outcome", "decided_by", "notes"])?;
    let outcome = b.choice("outcome", AppealOutcome::parse, "upheld, dismissed, varied");
    let decided_by = b.text("decided_by", true);
    let notes = b.text("notes", false);
    b.finish()?;
    let (Some(outcome), Some(decided_by)) = (outcome, decided_by) else {
        return Err(ApiError::Internal(
            "decision validation passed with a missing field".into(),
        ));
    };
    let decision = AppealDecision {
        outcome,
        decided_by: decided_by.clone(),
        notes: notes.clone(),
        recorded_by: actor.to_owned(),
        decided_at: state.clock.now(),
    };
    let reason = match &notes {
        Some(n) => format!("Appeal {id} upheld by {decided_by}: {n}"),
        None => format!("Appeal {id} upheld by {decided_by}"),
    };
    let (appeal, a) = state
        .store
        .decide_appeal(id, &decision, &reason)
        .await
        .map_err(|e| lifecycle_error(e, &format!("no appeal {id}")))?;
    state.cache.invalidate(&a.phone_numbers).await;
    tracing::info!(
        arrangement_id = %a.id,
        appeal_id = %appeal.id,
        outcome = outcome.as_str(),
        version = a.version,
        actor = %actor,
        "appeal decided"
    );
    Ok(appeal)
}

// ---------------------------------------------------------------------------------------------
// Reviews
// ---------------------------------------------------------------------------------------------

#[utoipa::path(
    post,
    operation_id = "createReview",
    tag = "reviews",
    path = "/api/v1/arrangements/{id}/reviews",
    params(("id" = String, Path, description = "arr_…")),
    request_body = ArrangementReviewRequest,
    responses(
        (status = 201, description = "Recorded; the arrangement has a new version", body = ArrangementReviewView),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
        (status = 409, description = "The arrangement is revoked", body = crate::api::error::Problem),
        (status = 415, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_review(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    principal.require_manager()?;
    let id = arrangement_id(&id)?;
    let saved = record_review(&state, &id, &body, &principal.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(ArrangementReviewView::from(&saved)),
    )
        .into_response())
}

#[utoipa::path(
    get,
    operation_id = "listReviews",
    tag = "reviews",
    path = "/api/v1/arrangements/{id}/reviews",
    params(("id" = String, Path, description = "arr_…")),
    responses(
        (status = 200, body = ArrangementReviewList),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_reviews(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ArrangementReviewList>> {
    principal.require_manager()?;
    let id = arrangement_id(&id)?;
    let reviews = state.store.list_reviews(&id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no arrangement {id}")),
        other => other.into(),
    })?;
    Ok(Json(ArrangementReviewList {
        items: reviews.iter().map(ArrangementReviewView::from).collect(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Appeals
// ---------------------------------------------------------------------------------------------

#[utoipa::path(
    post,
    operation_id = "createAppeal",
    tag = "appeals",
    path = "/api/v1/arrangements/{id}/appeals",
    params(("id" = String, Path, description = "arr_…")),
    request_body = AppealRequest,
    responses(
        (status = 201, description = "Recorded (open); the arrangement has a new version", body = AppealView),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
        (status = 409, description = "The arrangement is revoked", body = crate::api::error::Problem),
        (status = 415, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_appeal(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    principal.require_manager()?;
    let id = arrangement_id(&id)?;
    let saved = record_appeal(&state, &id, &body, &principal.name).await?;
    Ok((StatusCode::CREATED, Json(AppealView::from(&saved))).into_response())
}

#[utoipa::path(
    post,
    operation_id = "decideAppeal",
    tag = "appeals",
    path = "/api/v1/appeals/{id}/decision",
    params(("id" = String, Path, description = "apl_…")),
    request_body = AppealDecisionRequest,
    responses(
        (status = 200, description = "Decided; the arrangement has a new version (revoked when upheld)", body = AppealView),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
        (status = 409, description = "Already decided", body = crate::api::error::Problem),
        (status = 415, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn decide_appeal(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<AppealView>> {
    principal.require_manager()?;
    let id = appeal_id(&id)?;
    let appeal = decide(&state, &id, &body, &principal.name).await?;
    Ok(Json(AppealView::from(&appeal)))
}

#[utoipa::path(
    get,
    operation_id = "getAppeal",
    tag = "appeals",
    path = "/api/v1/appeals/{id}",
    params(("id" = String, Path, description = "apl_…")),
    responses(
        (status = 200, body = AppealView),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_appeal(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AppealView>> {
    principal.require_manager()?;
    let id = appeal_id(&id)?;
    let appeal = state
        .store
        .get_appeal(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no appeal {id}")))?;
    Ok(Json(AppealView::from(&appeal)))
}

#[utoipa::path(
    get,
    operation_id = "listAppeals",
    tag = "appeals",
    path = "/api/v1/appeals",
    params(AppealQuery),
    responses(
        (status = 200, body = AppealList),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_appeals(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AppealQuery>,
) -> ApiResult<Json<AppealList>> {
    principal.require_manager()?;
    let params = query::params(&q);
    let mut fields = Fields::query(&params);
    let status = fields.choice(
        "status",
        Optional,
        &[
            ("open", AppealStatus::Open),
            ("decided", AppealStatus::Decided),
        ],
        "must be open or decided",
    );
    let only = fields.parsed(
        "arrangement_id",
        Optional,
        ArrangementId::parse,
        "must be an arrangement id (arr_…)",
    );
    let limit = query::limit(&mut fields);
    query::finish(fields)?;
    let items = state
        .store
        .list_appeals(status, only.as_ref(), limit)
        .await?;
    Ok(Json(AppealList {
        items: items.iter().map(AppealView::from).collect(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Letters
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LetterQuery {
    /// notice | review | ended (default notice)
    #[param(value_type = Option<LetterKindName>)]
    pub kind: Option<String>,
    /// en | cy | en+cy | cy+en (default: the arrangement's language)
    #[param(value_type = Option<crate::api::schemas::LanguageName>)]
    pub language: Option<String>,
    /// html | text | pdf (default html)
    #[param(value_type = Option<LetterFormatName>)]
    pub format: Option<String>,
}

/// The closed sets of the lifecycle endpoints, for the document (the handlers read strings and
/// answer 422 naming the field for anything else).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ReviewOutcomeName {
    Continue,
    Vary,
    End,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AppealOutcomeName {
    Upheld,
    Dismissed,
    Varied,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AppealStatusName {
    Open,
    Decided,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum LetterKindName {
    Notice,
    Review,
    Ended,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum LetterFormatName {
    Html,
    Text,
    Pdf,
}

#[utoipa::path(
    get,
    operation_id = "getLetter",
    tag = "letters",
    path = "/api/v1/arrangements/{id}/letter",
    params(("id" = String, Path, description = "arr_…"), LetterQuery),
    responses(
        (status = 200, description = "The letter (text/html, text/plain or application/pdf)", content_type = "text/html"),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
        (status = 409, description = "No review recorded (review) or not ended yet (ended)", body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn letter(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LetterQuery>,
) -> ApiResult<Response> {
    use crate::letters::{LetterFormat, LetterKind};
    principal.require_manager()?;
    let id = arrangement_id(&id)?;
    let params = query::params(&q);
    let mut fields = Fields::query(&params);
    let kind = fields.parsed(
        "kind",
        Required,
        |k| LetterKind::parse(k).ok_or(()),
        "must be notice, review or ended",
    );
    let language = fields.parsed(
        "language",
        Optional,
        |l| l.parse::<crate::domain::LanguageSetting>(),
        "must be en, cy, en+cy or cy+en",
    );
    let format = if fields.has("format") {
        fields.parsed(
            "format",
            Optional,
            |f| LetterFormat::parse(f).ok_or(()),
            "must be html, text or pdf",
        )
    } else {
        Some(LetterFormat::Html)
    };
    query::finish(fields)?;
    let (Some(kind), Some(format)) = (kind, format) else {
        return Err(ApiError::Internal(
            "letter query passed without a kind".into(),
        ));
    };
    let file = make_letter(&state, &id, kind, language, format).await?;
    let disposition = format!("inline; filename=\"{}\"", file.filename);
    Ok((
        StatusCode::OK,
        [
            (
                axum::http::header::CONTENT_TYPE,
                file.content_type.to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        file.body,
    )
        .into_response())
}

/// A letter ready to send: its media type, bytes and a file name.
pub struct LetterFile {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub filename: String,
}

/// The letter to the customer (SPEC §13) for an arrangement, from src/letters.rs.
pub async fn make_letter(
    state: &AppState,
    id: &ArrangementId,
    kind: crate::letters::LetterKind,
    language: Option<crate::domain::LanguageSetting>,
    format: crate::letters::LetterFormat,
) -> ApiResult<LetterFile> {
    use crate::letters::LetterFormat;
    let a = arrangement(state, id).await?;
    let built = build_letter(state, &a, kind, language).await?;
    let file = format!(
        "letter-{}-{}",
        a.customer_ref
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            })
            .collect::<String>(),
        kind.as_str()
    );
    let (content_type, body, ext) = match format {
        LetterFormat::Html => (
            "text/html; charset=utf-8",
            crate::letters::to_html(&built).into_bytes(),
            "html",
        ),
        LetterFormat::Text => (
            "text/plain; charset=utf-8",
            crate::letters::to_text(&built).into_bytes(),
            "txt",
        ),
        LetterFormat::Pdf => (
            "application/pdf",
            // Laying out a PDF is CPU work: keep it off the request threads.
            tokio::task::spawn_blocking(move || crate::letters::to_pdf(&built))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            "pdf",
        ),
    };
    Ok(LetterFile {
        content_type,
        body,
        filename: format!("{file}.{ext}"),
    })
}

/// The letter (SPEC §13) for an arrangement, built by src/letters.rs but not yet rendered.
pub async fn build_letter(
    state: &AppState,
    a: &Arrangement,
    kind: crate::letters::LetterKind,
    language: Option<crate::domain::LanguageSetting>,
) -> ApiResult<crate::letters::Letter> {
    use crate::letters::{LetterError, LetterInput, LetterKind};
    let id = &a.id;
    let reviews = if kind == LetterKind::Review {
        state.store.list_reviews(id).await?
    } else {
        Vec::new()
    };
    let languages = language.unwrap_or(a.language).spoken();
    let staff_names: Vec<String> = a
        .designated_staff
        .iter()
        .map(|s| {
            state
                .config
                .staff_member(s)
                .map(|m| m.name.clone())
                .unwrap_or_else(|| s.to_string())
        })
        .collect();
    let cfg = &state.config.lifecycle;
    let input = LetterInput {
        kind,
        arrangement: a,
        review: reviews.last(),
        organisation: &state.config.organisation.name,
        letterhead: &cfg.letterhead,
        staff_names,
        now: state.clock.now(),
        tz: state.calendar.tz,
        languages,
        templates_dir: cfg.letters_dir.as_deref(),
    };
    crate::letters::build(&input).map_err(|e| match e {
        LetterError::NoReview | LetterError::NotEnded => ApiError::Conflict(e.to_string()),
        other => ApiError::Internal(other.to_string()),
    })
}
