//! The JSON shapes of records as Fairline shows them to others: the API answers with them and
//! the notifications to the organisation carry them (SPEC §5, §13). Kept apart from the HTTP
//! layer so that background workers (the notices) need not import it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::{Allowance, Arrangement, ArrangementKind, Window};
use crate::state::AppState;
use crate::store::lifecycle::{Appeal, AppealOutcome, AppealStatus};

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

/// An appeal as the API shows it: the decision fields are null while it is open.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppealView {
    #[schema(example = "apl_01JF0000000000000000000000")]
    pub id: String,
    pub arrangement_id: String,
    #[schema(example = "open")]
    pub status: AppealStatus,
    pub received_at: DateTime<Utc>,
    pub grounds: String,
    /// The API token that recorded the appeal.
    pub recorded_by: String,
    pub created_at: DateTime<Utc>,
    pub outcome: Option<AppealOutcome>,
    pub decided_by: Option<String>,
    pub notes: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl From<&Appeal> for AppealView {
    fn from(a: &Appeal) -> Self {
        AppealView {
            id: a.id.to_string(),
            arrangement_id: a.arrangement_id.to_string(),
            status: a.status(),
            received_at: a.received_at,
            grounds: a.grounds.clone(),
            recorded_by: a.recorded_by.clone(),
            created_at: a.created_at,
            outcome: a.decision.as_ref().map(|d| d.outcome),
            decided_by: a.decision.as_ref().map(|d| d.decided_by.clone()),
            notes: a.decision.as_ref().and_then(|d| d.notes.clone()),
            decided_at: a.decision.as_ref().map(|d| d.decided_at),
        }
    }
}
