//! Arrangements (SPEC §5): create, list, get, update with `If-Match`, revoke, history.
//! Manager tokens only. Every invalid field is reported at once.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::error::{ApiError, ApiResult, FieldError};
use crate::api::extract::{ApiJson, Principal};
use crate::api::query::{self, next_cursor};
use crate::api::rejection::{ApiPath, ApiQuery};
use crate::domain::{
    Allowance, AllowancePeriod, Arrangement, ArrangementId, ArrangementKind, ArrangementStatus,
    Day, LanguageSetting, LocalTime, PhoneNumber, StaffId, Window,
};
use crate::fields::{Fields as FieldReader, Optional};
use crate::state::AppState;
use crate::store::{ArrangementFilter, ArrangementVersion, ChangeKind};

/// An arrangement as the API shows it: the stored fields plus the derived `status` (and
/// `review_overdue` when the review date has passed on an active arrangement).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArrangementView {
    #[schema(example = "arr_01JF0000000000000000000000")]
    pub id: String,
    pub customer_ref: String,
    pub customer_name: Option<String>,
    #[schema(example = json!(["+442920123456"]))]
    pub phone_numbers: Vec<String>,
    #[schema(value_type = crate::api::schemas::ArrangementKindName, example = "restricted")]
    pub kind: String,
    #[schema(value_type = Vec<crate::api::schemas::WindowSchema>, example = json!([{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}]))]
    pub windows: Vec<Window>,
    #[schema(value_type = Option<crate::api::schemas::AllowanceSchema>, example = json!({"count": 1, "per": "day"}))]
    pub allowance: Option<Allowance>,
    pub designated_staff: Vec<String>,
    pub max_call_minutes: Option<u32>,
    #[schema(value_type = crate::api::schemas::LanguageName, example = "cy+en")]
    pub language: String,
    pub reason: String,
    pub decided_by: String,
    pub equality_advice_sought: bool,
    pub advocate: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub review_due: NaiveDate,
    #[schema(value_type = crate::api::schemas::ArrangementStatusName, example = "active")]
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_overdue: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Words for the customer (SPEC §13): why the arrangement was needed.
    pub customer_explanation: Option<String>,
    /// How many appeals against it are open (SPEC §13).
    pub open_appeals: u32,
    /// SPEC §14: whether a spoken refusal offers the safeguarding route.
    pub urgent_route: bool,
}

impl ArrangementView {
    pub fn new(a: &Arrangement, now: DateTime<Utc>, state: &AppState) -> Self {
        let today = now.with_timezone(&state.calendar.tz).date_naive();
        ArrangementView {
            id: a.id.to_string(),
            customer_ref: a.customer_ref.clone(),
            customer_name: a.customer_name.clone(),
            phone_numbers: a.phone_numbers.iter().map(|n| n.to_string()).collect(),
            kind: match a.kind {
                ArrangementKind::Restricted => "restricted".into(),
                ArrangementKind::Blocked => "blocked".into(),
            },
            windows: a.windows.clone(),
            allowance: a.allowance,
            designated_staff: a.designated_staff.iter().map(|s| s.to_string()).collect(),
            max_call_minutes: a.max_call_minutes,
            language: a.language.to_string(),
            reason: a.reason.clone(),
            decided_by: a.decided_by.clone(),
            equality_advice_sought: a.equality_advice_sought,
            advocate: a.advocate.clone(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            review_due: a.review_due,
            status: a.status_at(now).as_str().into(),
            review_overdue: a.review_overdue_at(now, today).then_some(true),
            revoked_at: a.revoked_at,
            revoked_reason: a.revoked_reason.clone(),
            created_at: a.created_at,
            updated_at: a.updated_at,
            version: a.version,
            customer_explanation: a.customer_explanation.clone(),
            open_appeals: a.open_appeals,
            urgent_route: a.urgent_route,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArrangementList {
    pub items: Vec<ArrangementView>,
    /// When the page is full: pass it as `after` to get the next page; otherwise null.
    pub next: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub version: i64,
    #[schema(value_type = crate::api::schemas::ChangeKindName, example = "updated")]
    pub change: String,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
    pub arrangement: ArrangementView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub items: Vec<HistoryEntry>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why; 1 to 4000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A phone number in any common form; normalised.
    #[param(format = "phone")]
    pub phone: Option<String>,
    /// The derived status at the time of the request.
    #[param(schema_with = crate::api::schemas::arrangement_status_filter)]
    pub status: Option<String>,
    /// YYYY-MM-DD: arrangements whose review is due before this date.
    #[param(schema_with = crate::api::schemas::date_filter)]
    pub review_due_before: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Paging: the `next` value of the previous page (an arrangement id).
    #[param(schema_with = crate::api::schemas::arrangement_cursor)]
    pub after: Option<String>,
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn with_etag(status: StatusCode, view: ArrangementView) -> Response {
    let tag = etag(view.version);
    let mut resp = (status, Json(view)).into_response();
    resp.headers_mut().insert(header::ETAG, tag);
    resp
}

fn parse_id(raw: &str) -> ApiResult<ArrangementId> {
    ArrangementId::parse(raw).map_err(|_| ApiError::NotFound(format!("no arrangement {raw:?}")))
}

// ---------------------------------------------------------------------------------------------
// Input validation
// ---------------------------------------------------------------------------------------------

/// Read-only fields a client may echo back from a GET; ignored.
const READ_ONLY: [&str; 9] = [
    "open_appeals",
    "id",
    "status",
    "review_overdue",
    "created_at",
    "updated_at",
    "version",
    "revoked_at",
    "revoked_reason",
];
const WRITABLE: [&str; 18] = [
    "customer_explanation",
    "urgent_route",
    "customer_ref",
    "customer_name",
    "phone_numbers",
    "kind",
    "windows",
    "allowance",
    "designated_staff",
    "max_call_minutes",
    "language",
    "reason",
    "decided_by",
    "equality_advice_sought",
    "advocate",
    "starts_at",
    "ends_at",
    "review_due",
];

struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    fn err(&mut self, field: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(FieldError::new(field, msg));
    }
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
    fn text(&mut self, key: &str, required: bool, max: usize) -> Option<String> {
        match self.get(key) {
            None => {
                if required {
                    self.err(key, "is required");
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() && required => {
                self.err(key, "must not be empty");
                None
            }
            Some(Value::String(s)) if s.chars().count() > max => {
                self.err(key, format!("must be at most {max} characters"));
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Some(_) => {
                self.err(key, "must be a string");
                None
            }
        }
    }
    fn instant(&mut self, key: &str, required: bool) -> Option<DateTime<Utc>> {
        match self.get(key) {
            None => {
                if required {
                    self.err(key, "is required");
                }
                None
            }
            Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    self.err(
                        key,
                        "must be an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z",
                    );
                    None
                }
            },
            Some(_) => {
                self.err(key, "must be an RFC 3339 instant string");
                None
            }
        }
    }
}

/// The body as a field reader; unknown fields and an `id` that is not the one being updated
/// are already reported in it.
fn fields_of<'a>(body: &'a Value, existing: Option<&Arrangement>) -> ApiResult<Fields<'a>> {
    let Some(map) = body.as_object() else {
        return Err(ApiError::validation("body", "must be a JSON object"));
    };
    let mut f = Fields {
        map,
        errors: Vec::new(),
    };
    for key in map.keys() {
        if !WRITABLE.contains(&key.as_str()) && !READ_ONLY.contains(&key.as_str()) {
            f.err(key.clone(), "unknown field");
        }
    }
    if let (Some(existing), Some(Value::String(id))) = (existing, map.get("id")) {
        if id != existing.id.as_str() {
            f.err("id", "does not match the arrangement being updated");
        }
    }
    Ok(f)
}

/// `phone_numbers`: one to twenty numbers, normalised, none twice.
fn phone_numbers_field(f: &mut Fields<'_>) -> Vec<PhoneNumber> {
    let mut phone_numbers = Vec::new();
    match f.get("phone_numbers") {
        None => f.err("phone_numbers", "is required: one or more numbers"),
        Some(Value::Array(items)) if items.is_empty() => {
            f.err("phone_numbers", "must list one or more numbers")
        }
        Some(Value::Array(items)) if items.len() > 20 => {
            f.err("phone_numbers", "must list at most 20 numbers")
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("phone_numbers[{i}]");
                match item.as_str().map(PhoneNumber::parse) {
                    Some(Ok(n)) => {
                        if phone_numbers.contains(&n) {
                            f.err(field, "is listed twice");
                        } else {
                            phone_numbers.push(n);
                        }
                    }
                    Some(Err(crate::domain::PhoneNumberError::Withheld)) => f.err(
                        field,
                        "is a withheld-number form, which can never match a caller",
                    ),
                    Some(Err(_)) => f.err(field, "is not a phone number"),
                    None => f.err(field, "must be a string"),
                }
            }
        }
        Some(_) => f.err("phone_numbers", "must be a list of strings"),
    }
    phone_numbers
}

/// `kind`: restricted or blocked.
fn kind_field(f: &mut Fields<'_>) -> Option<ArrangementKind> {
    let kind = match f.get("kind") {
        None => {
            f.err("kind", "is required: restricted or blocked");
            None
        }
        Some(Value::String(s)) if s == "restricted" => Some(ArrangementKind::Restricted),
        Some(Value::String(s)) if s == "blocked" => Some(ArrangementKind::Blocked),
        Some(_) => {
            f.err("kind", "must be restricted or blocked");
            None
        }
    };
    kind
}

/// `windows`: each with days, and `start < end`.
fn windows_field(f: &mut Fields<'_>) -> Vec<Window> {
    let mut windows = Vec::new();
    match f.get("windows") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let base = format!("windows[{i}]");
                let Some(obj) = item.as_object() else {
                    f.err(base, "must be an object with days, start and end");
                    continue;
                };
                for k in obj.keys() {
                    if !["days", "start", "end"].contains(&k.as_str()) {
                        f.err(format!("{base}.{k}"), "unknown field");
                    }
                }
                let mut days = Vec::new();
                match obj.get("days") {
                    Some(Value::Array(ds)) if !ds.is_empty() => {
                        for (j, d) in ds.iter().enumerate() {
                            match d.as_str().and_then(|s| {
                                serde_json::from_value::<Day>(Value::String(s.into())).ok()
                            }) {
                                Some(day) if !days.contains(&day) => days.push(day),
                                Some(_) => f.err(format!("{base}.days[{j}]"), "is listed twice"),
                                None => f.err(
                                    format!("{base}.days[{j}]"),
                                    "must be one of mon, tue, wed, thu, fri, sat, sun",
                                ),
                            }
                        }
                    }
                    _ => f.err(
                        format!("{base}.days"),
                        "must list one or more days (mon … sun)",
                    ),
                }
                let mut time =
                    |k: &str| match obj.get(k).and_then(|v| v.as_str()).map(LocalTime::parse) {
                        Some(Ok(t)) => Some(t),
                        _ => {
                            f.err(
                                format!("{base}.{k}"),
                                "must be a local time HH:MM (00:00 to 24:00)",
                            );
                            None
                        }
                    };
                let start = time("start");
                let end = time("end");
                if let (Some(s), Some(e)) = (start, end) {
                    if s >= e {
                        f.err(format!("{base}.end"), "must be later than start");
                    } else if !days.is_empty() {
                        days.sort();
                        windows.push(Window {
                            days,
                            start: s,
                            end: e,
                        });
                    }
                }
            }
        }
        Some(_) => f.err("windows", "must be a list of windows"),
    }
    windows
}

/// `allowance`: a count from 1 to 1000 per day or week.
fn allowance_field(f: &mut Fields<'_>) -> Option<Allowance> {
    let allowance = match f.get("allowance") {
        None => None,
        Some(Value::Object(obj)) => {
            for k in obj.keys() {
                if !["count", "per"].contains(&k.as_str()) {
                    f.err(format!("allowance.{k}"), "unknown field");
                }
            }
            let count = match obj.get("count").and_then(|v| v.as_u64()) {
                Some(c) if (1..=1000).contains(&c) => u32::try_from(c).ok(),
                _ => {
                    f.err("allowance.count", "must be a whole number from 1 to 1000");
                    None
                }
            };
            let per = match obj.get("per").and_then(|v| v.as_str()) {
                Some("day") => Some(AllowancePeriod::Day),
                Some("week") => Some(AllowancePeriod::Week),
                _ => {
                    f.err("allowance.per", "must be day or week");
                    None
                }
            };
            count.zip(per).map(|(count, per)| Allowance { count, per })
        }
        Some(_) => {
            f.err(
                "allowance",
                "must be an object {\"count\": N, \"per\": \"day\"|\"week\"}",
            );
            None
        }
    };
    allowance
}

/// `designated_staff`: configured staff ids, none twice.
fn designated_staff_field(f: &mut Fields<'_>, state: &AppState) -> Vec<StaffId> {
    let mut designated_staff = Vec::new();
    match f.get("designated_staff") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("designated_staff[{i}]");
                match item.as_str().map(StaffId::parse) {
                    Some(Ok(id)) if state.config.staff_member(&id).is_none() => f.err(
                        field,
                        format!("no member of staff {:?} is configured", id.as_str()),
                    ),
                    Some(Ok(id)) if designated_staff.contains(&id) => {
                        f.err(field, "is listed twice")
                    }
                    Some(Ok(id)) => designated_staff.push(id),
                    _ => f.err(field, "must be a staff id ([a-z0-9_-]+)"),
                }
            }
        }
        Some(_) => f.err("designated_staff", "must be a list of staff ids"),
    }
    designated_staff
}

/// `max_call_minutes`: 1 to 240.
fn max_call_minutes_field(f: &mut Fields<'_>) -> Option<u32> {
    let max_call_minutes = match f.get("max_call_minutes") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(m) if (1..=240).contains(&m) => u32::try_from(m).ok(),
            _ => {
                f.err(
                    "max_call_minutes",
                    "must be a whole number of minutes from 1 to 240",
                );
                None
            }
        },
    };
    max_call_minutes
}

/// `language`: default the existing arrangement's, else the organisation's.
fn language_field(
    f: &mut Fields<'_>,
    state: &AppState,
    existing: Option<&Arrangement>,
) -> Option<LanguageSetting> {
    let language = match f.get("language") {
        None => Some(
            existing
                .map(|e| e.language)
                .unwrap_or(state.config.organisation.language),
        ),
        Some(Value::String(s)) => match s.parse::<LanguageSetting>() {
            Ok(l) => Some(l),
            Err(_) => {
                f.err("language", "must be one of en, cy, en+cy, cy+en");
                None
            }
        },
        Some(_) => {
            f.err("language", "must be one of en, cy, en+cy, cy+en");
            None
        }
    };
    language
}

/// `urgent_route` (SPEC §14): default true; an update without it keeps what the arrangement had.
fn urgent_route_field(f: &mut Fields<'_>, existing: Option<&Arrangement>) -> bool {
    match f.get("urgent_route") {
        None => existing.is_none_or(|e| e.urgent_route),
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            f.err("urgent_route", "must be true or false");
            true
        }
    }
}

/// `equality_advice_sought`: default false.
fn equality_advice_field(f: &mut Fields<'_>) -> bool {
    let equality_advice_sought = match f.get("equality_advice_sought") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            f.err("equality_advice_sought", "must be true or false");
            false
        }
    };
    equality_advice_sought
}

/// `starts_at` (default the existing one, else now), `ends_at` after it, `review_due` on or
/// before the local date of `ends_at`.
fn period_fields(
    f: &mut Fields<'_>,
    state: &AppState,
    now: DateTime<Utc>,
    existing: Option<&Arrangement>,
) -> (DateTime<Utc>, Option<DateTime<Utc>>, Option<NaiveDate>) {
    let starts_at = f
        .instant("starts_at", false)
        .or_else(|| existing.map(|e| e.starts_at))
        .unwrap_or(now);
    let ends_at = f.instant("ends_at", true);
    let review_due = match f.get("review_due") {
        None => {
            f.err("review_due", "is required (YYYY-MM-DD)");
            None
        }
        Some(Value::String(s)) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                f.err("review_due", "must be a date YYYY-MM-DD");
                None
            }
        },
        Some(_) => {
            f.err("review_due", "must be a date YYYY-MM-DD");
            None
        }
    };
    if let Some(ends) = ends_at {
        if ends <= starts_at {
            f.err("ends_at", "must be later than starts_at");
        }
        if let Some(review) = review_due {
            let ends_local = ends.with_timezone(&state.calendar.tz).date_naive();
            if review > ends_local {
                f.err("review_due", "must be on or before ends_at");
            }
        }
    }
    (starts_at, ends_at, review_due)
}

/// A restricted arrangement needs a rule; a blocked one has none.
fn kind_rules(f: &mut Fields<'_>, kind: Option<ArrangementKind>) {
    if let Some(kind) = kind {
        match kind {
            ArrangementKind::Restricted => {
                if f.get("windows")
                    .is_none_or(|w| w.as_array().is_some_and(|a| a.is_empty()))
                    && f.get("allowance").is_none()
                    && f.get("designated_staff")
                        .is_none_or(|s| s.as_array().is_some_and(|a| a.is_empty()))
                {
                    f.err(
                        "kind",
                        "a restricted arrangement needs at least one of windows, allowance or designated_staff",
                    );
                }
            }
            ArrangementKind::Blocked => {
                for k in ["windows", "designated_staff"] {
                    if f.get(k)
                        .and_then(|v| v.as_array())
                        .is_some_and(|a| !a.is_empty())
                    {
                        f.err(k, "must be empty for a blocked arrangement");
                    }
                }
                if f.get("allowance").is_some() {
                    f.err("allowance", "must be empty for a blocked arrangement");
                }
            }
        }
    }
}

/// Validate a create or update body into an arrangement (id, times and version are filled in
/// by the caller).
fn validate(
    body: &Value,
    state: &AppState,
    now: DateTime<Utc>,
    existing: Option<&Arrangement>,
) -> ApiResult<Arrangement> {
    let mut f = fields_of(body, existing)?;
    let customer_ref = f.text("customer_ref", true, 100);
    let customer_name = f.text("customer_name", false, 200);
    let reason = f.text("reason", true, 4000);
    let decided_by = f.text("decided_by", true, 200);
    let advocate = f.text("advocate", false, 500);
    let customer_explanation = f.text("customer_explanation", false, 4000);

    let phone_numbers = phone_numbers_field(&mut f);
    let kind = kind_field(&mut f);
    let windows = windows_field(&mut f);
    let allowance = allowance_field(&mut f);
    let designated_staff = designated_staff_field(&mut f, state);
    let max_call_minutes = max_call_minutes_field(&mut f);
    let language = language_field(&mut f, state, existing);
    let equality_advice_sought = equality_advice_field(&mut f);
    let urgent_route = urgent_route_field(&mut f, existing);
    let (starts_at, ends_at, review_due) = period_fields(&mut f, state, now, existing);
    kind_rules(&mut f, kind);

    if !f.errors.is_empty() {
        return Err(ApiError::Validation(f.errors));
    }
    match (
        customer_ref,
        kind,
        reason,
        decided_by,
        ends_at,
        review_due,
        language,
    ) {
        (
            Some(customer_ref),
            Some(kind),
            Some(reason),
            Some(decided_by),
            Some(ends_at),
            Some(review_due),
            Some(language),
        ) => Ok(Arrangement {
            id: existing
                .map(|e| e.id.clone())
                .unwrap_or_else(ArrangementId::generate),
            customer_ref,
            customer_name,
            phone_numbers,
            kind,
            windows,
            allowance,
            designated_staff,
            max_call_minutes,
            language,
            reason,
            decided_by,
            equality_advice_sought,
            advocate,
            starts_at,
            ends_at,
            review_due,
            revoked_at: existing.and_then(|e| e.revoked_at),
            revoked_reason: existing.and_then(|e| e.revoked_reason.clone()),
            created_at: existing.map(|e| e.created_at).unwrap_or(now),
            updated_at: now,
            version: existing.map(|e| e.version).unwrap_or(1),
            customer_explanation,
            open_appeals: existing.map(|e| e.open_appeals).unwrap_or(0),
            urgent_route,
        }),
        _ => Err(ApiError::Internal(
            "validation passed with a missing field".into(),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

#[utoipa::path(
    post,
    path = "/api/v1/arrangements",
    operation_id = "createArrangement",
    tag = "arrangements",
    request_body(content = crate::api::schemas::ArrangementInput, description = "An arrangement (SPEC §5) without id, status, times or version"),
    responses(
        (status = 201, description = "Created", body = ArrangementView),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 409, description = "A number would be in two arrangements whose periods in force overlap (SPEC §11): an arrangement is in force from starts_at to the earlier of ends_at and its revocation, so a new one for a revoked arrangement's numbers must start after the revocation. The detail names the other arrangement (number masked).", body = crate::api::error::Problem),
        (status = 415, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    principal.require_manager()?;
    let now = state.clock.now();
    let arrangement = validate(&body, &state, now, None)?;
    let created = state
        .store
        .create_arrangement(&arrangement, &principal.name)
        .await?;
    state.cache.invalidate(&created.phone_numbers).await;
    tracing::info!(arrangement_id = %created.id, actor = %principal.name, "arrangement created");
    Ok(with_etag(
        StatusCode::CREATED,
        ArrangementView::new(&created, now, &state),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/arrangements",
    operation_id = "listArrangements",
    tag = "arrangements",
    params(ListQuery),
    responses(
        (status = 200, body = ArrangementList),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<ArrangementList>> {
    principal.require_manager()?;
    let now = state.clock.now();
    let params = query::params(&q);
    let mut fields = FieldReader::query(&params);
    let phone = fields.phone("phone", Optional);
    let status = fields.choice(
        "status",
        Optional,
        &[
            ("scheduled", ArrangementStatus::Scheduled),
            ("active", ArrangementStatus::Active),
            ("expired", ArrangementStatus::Expired),
            ("revoked", ArrangementStatus::Revoked),
        ],
        "must be scheduled, active, expired or revoked",
    );
    let review_due_before = fields.date("review_due_before", Optional);
    let limit = query::limit(&mut fields);
    let after = fields.parsed(
        "after",
        Optional,
        ArrangementId::parse,
        "must be an arrangement id (arr_…)",
    );
    query::finish(fields)?;
    let items = state
        .store
        .list_arrangements(&ArrangementFilter {
            phone,
            status,
            review_due_before,
            now: Some(now),
            limit,
            after,
        })
        .await?;
    let next = next_cursor(&items, limit, |a| a.id.to_string());
    Ok(Json(ArrangementList {
        items: items
            .iter()
            .map(|a| ArrangementView::new(a, now, &state))
            .collect(),
        next,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/arrangements/{id}",
    operation_id = "getArrangement",
    tag = "arrangements",
    params(("id" = String, Path, description = "arr_…")),
    responses(
        (status = 200, body = ArrangementView),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    principal.require_manager()?;
    let id = parse_id(&id)?;
    let a = state
        .store
        .get_arrangement(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no arrangement {id}")))?;
    Ok(with_etag(
        StatusCode::OK,
        ArrangementView::new(&a, state.clock.now(), &state),
    ))
}

fn if_match_version(headers: &HeaderMap) -> ApiResult<i64> {
    let raw = headers
        .get(header::IF_MATCH)
        .ok_or_else(|| {
            ApiError::PreconditionRequired(
                "send If-Match with the version you are replacing, e.g. If-Match: \"3\"".into(),
            )
        })?
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-Match is not readable".into()))?;
    let trimmed = raw.trim().trim_start_matches("W/").trim_matches('"');
    trimmed.parse::<i64>().map_err(|_| {
        ApiError::BadRequest("If-Match must be the arrangement's version, e.g. \"3\"".into())
    })
}

#[utoipa::path(
    put,
    path = "/api/v1/arrangements/{id}",
    operation_id = "updateArrangement",
    tag = "arrangements",
    params(("id" = String, Path, description = "arr_…"), ("If-Match" = String, Header, description = "the version being replaced, e.g. \"3\" (the ETag of the GET); without it the answer is 428, with an unreadable one 400, with a stale one 412", pattern = r#"^\s*(W/)?"?[0-9]{1,18}"?\s*$"#)),
    request_body(content = crate::api::schemas::ArrangementInput, description = "The whole arrangement"),
    responses(
        (status = 200, body = ArrangementView),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
        (status = 409, description = "A number would be in two arrangements whose periods in force overlap (SPEC §11): an arrangement is in force from starts_at to the earlier of ends_at and its revocation, so a new one for a revoked arrangement's numbers must start after the revocation. The detail names the other arrangement (number masked). Also: the arrangement is revoked.", body = crate::api::error::Problem),
        (status = 412, description = "Stale version", body = crate::api::error::Problem),
        (status = 415, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem),
        (status = 428, description = "If-Match missing", body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    principal.require_manager()?;
    let id = parse_id(&id)?;
    let existing = state
        .store
        .get_arrangement(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no arrangement {id}")))?;
    let expected = if_match_version(&headers)?;
    if expected != existing.version {
        return Err(ApiError::PreconditionFailed(format!(
            "the arrangement has changed: its current version is {}",
            existing.version
        )));
    }
    if existing.revoked_at.is_some() {
        return Err(ApiError::Conflict(
            "a revoked arrangement cannot be changed".into(),
        ));
    }
    let now = state.clock.now();
    let updated = validate(&body, &state, now, Some(&existing))?;
    let saved = state
        .store
        .update_arrangement(&updated, expected, &principal.name)
        .await?;
    let mut numbers = existing.phone_numbers.clone();
    numbers.extend(saved.phone_numbers.iter().cloned());
    state.cache.invalidate(&numbers).await;
    tracing::info!(arrangement_id = %saved.id, version = saved.version, actor = %principal.name, "arrangement updated");
    Ok(with_etag(
        StatusCode::OK,
        ArrangementView::new(&saved, now, &state),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/arrangements/{id}/revoke",
    operation_id = "revokeArrangement",
    tag = "arrangements",
    params(("id" = String, Path, description = "arr_…")),
    request_body = RevokeRequest,
    responses(
        (status = 200, body = ArrangementView),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem), (status = 409, description = "Already revoked", body = crate::api::error::Problem),
        (status = 415, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> ApiResult<Response> {
    principal.require_manager()?;
    let id = parse_id(&id)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 4000 {
        return Err(ApiError::validation(
            "reason",
            "must be 1 to 4000 characters",
        ));
    }
    let existing = state
        .store
        .get_arrangement(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no arrangement {id}")))?;
    if existing.revoked_at.is_some() {
        return Err(ApiError::Conflict(
            "the arrangement is already revoked".into(),
        ));
    }
    let now = state.clock.now();
    let revoked = state
        .store
        .revoke_arrangement(&id, reason, &principal.name, now)
        .await?;
    state.cache.invalidate(&revoked.phone_numbers).await;
    tracing::info!(arrangement_id = %revoked.id, actor = %principal.name, "arrangement revoked");
    Ok(with_etag(
        StatusCode::OK,
        ArrangementView::new(&revoked, now, &state),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/arrangements/{id}/history",
    operation_id = "getArrangementHistory",
    tag = "arrangements",
    params(("id" = String, Path, description = "arr_…")),
    responses(
        (status = 200, body = History),
        (status = 401, body = crate::api::error::Problem), (status = 403, body = crate::api::error::Problem),
        (status = 404, body = crate::api::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<History>> {
    principal.require_manager()?;
    let id = parse_id(&id)?;
    let now = state.clock.now();
    let versions: Vec<ArrangementVersion> = state.store.arrangement_history(&id).await?;
    Ok(Json(History {
        items: versions
            .iter()
            .map(|v| HistoryEntry {
                version: v.version,
                change: match v.change {
                    ChangeKind::Created => "created".into(),
                    ChangeKind::Updated => "updated".into(),
                    ChangeKind::Revoked => "revoked".into(),
                    ChangeKind::Reviewed => "reviewed".into(),
                    ChangeKind::Appealed => "appealed".into(),
                    ChangeKind::AppealDecided => "appeal_decided".into(),
                },
                changed_by: v.changed_by.clone(),
                changed_at: v.changed_at,
                arrangement: ArrangementView::new(&v.arrangement, now, &state),
            })
            .collect(),
    }))
}
