//! Documentation-only shapes of the `/api/v1` document: the typed request bodies and the closed
//! sets (enums) that the handlers read leniently (so that every invalid field is reported at once)
//! but that clients must see fully typed. Nothing here is used to parse a request.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::ToSchema;

/// A day of the week.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DayName {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A weekly window in which calls are permitted: `start <= local time < end` on the listed
/// days, in the organisation's time zone. `start` must be earlier than `end`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSchema {
    /// One or more days, each at most once.
    #[schema(min_items = 1, max_items = 7)]
    pub days: Vec<DayName>,
    /// Local time `HH:MM`, from 00:00 to 24:00.
    #[schema(
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$",
        example = "10:00"
    )]
    pub start: String,
    /// Local time `HH:MM`, later than `start` (24:00 is the end of the day).
    #[schema(
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$",
        example = "12:00"
    )]
    pub end: String,
}

/// The period an allowance counts calls in: the local calendar day or the ISO week (from
/// Monday 00:00 local time).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AllowancePer {
    Day,
    Week,
}

/// How many calls are permitted per period.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowanceSchema {
    #[schema(minimum = 1, maximum = 1000)]
    pub count: u32,
    pub per: AllowancePer,
}

/// `restricted` (needs at least one of windows, allowance, designated_staff) or `blocked`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArrangementKindName {
    Restricted,
    Blocked,
}

/// The languages a refusal is spoken in, in order.
#[derive(Deserialize, ToSchema)]
pub enum LanguageName {
    #[serde(rename = "en")]
    En,
    #[serde(rename = "cy")]
    Cy,
    #[serde(rename = "en+cy")]
    EnCy,
    #[serde(rename = "cy+en")]
    CyEn,
}

/// The derived status of an arrangement at the time of the request.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArrangementStatusName {
    Scheduled,
    Active,
    Expired,
    Revoked,
}

/// What a version of an arrangement recorded.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKindName {
    Created,
    Updated,
    Revoked,
}

/// Whether a termination has been reviewed by a manager.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewStatusName {
    Pending,
    Reviewed,
}

/// A telephony platform.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Twilio,
    Telnyx,
    Vonage,
}

/// The body of `POST /api/v1/arrangements` and `PUT /api/v1/arrangements/{id}` (SPEC §5).
///
/// Rules across fields (each broken rule is a 422 naming the field): a `restricted`
/// arrangement needs at least one of `windows`, `allowance`, `designated_staff` and a `blocked`
/// one has none of them;
/// `starts_at < ends_at`; `review_due` is on or before the date of `ends_at`; every window has
/// `start < end`; `designated_staff` names configured staff; `phone_numbers` are normalised
/// (any common form is accepted) and a number may not be in two arrangements whose periods in
/// force overlap (409). The read-only fields of an arrangement (`id`, `status`, `version`, …)
/// may be sent back as received and are ignored; any other field is rejected.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrangementInput {
    /// The organisation's reference for the customer.
    #[schema(min_length = 1, max_length = 100, example = "PSOW-2026-00123")]
    pub customer_ref: String,
    #[schema(max_length = 200)]
    pub customer_name: Option<String>,
    /// One to twenty phone numbers in any common form; stored in E.164.
    #[schema(min_items = 1, max_items = 20, value_type = Vec<String>, format = "phone", example = json!(["+442920123456"]))]
    pub phone_numbers: Vec<String>,
    pub kind: ArrangementKindName,
    #[schema(max_items = 50)]
    pub windows: Option<Vec<WindowSchema>>,
    pub allowance: Option<AllowanceSchema>,
    /// Staff ids from the `[[staff]]` configuration, each at most once.
    #[schema(value_type = Option<Vec<String>>, pattern = "^[a-z0-9_-]+$")]
    pub designated_staff: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 240)]
    pub max_call_minutes: Option<u32>,
    /// Default: the organisation's language.
    pub language: Option<LanguageName>,
    /// Why the arrangement was needed.
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
    #[schema(min_length = 1, max_length = 200)]
    pub decided_by: String,
    /// Default false.
    pub equality_advice_sought: Option<bool>,
    #[schema(max_length = 500)]
    pub advocate: Option<String>,
    /// Words meant for the customer: why the arrangement was needed, as the letters say it
    /// (SPEC §13).
    #[schema(max_length = 4000)]
    pub customer_explanation: Option<String>,
    /// SPEC §14: whether a spoken refusal offers the safeguarding route (when
    /// `[decision.urgent]` is enabled). Default true; an update without it keeps the old value.
    pub urgent_route: Option<bool>,
    /// Default: now (on create) or unchanged (on update).
    pub starts_at: Option<DateTime<Utc>>,
    /// Later than `starts_at`.
    pub ends_at: DateTime<Utc>,
    /// On or before the date of `ends_at`.
    pub review_due: NaiveDate,
    /// Read-only: ignored (must match the path on update).
    pub id: Option<String>,
    /// Read-only: ignored.
    pub status: Option<String>,
    /// Read-only: ignored.
    pub review_overdue: Option<bool>,
    /// Read-only: ignored.
    pub created_at: Option<String>,
    /// Read-only: ignored.
    pub updated_at: Option<String>,
    /// Read-only: ignored.
    pub version: Option<i64>,
    /// Read-only: ignored.
    pub revoked_at: Option<String>,
    /// Read-only: ignored.
    pub revoked_reason: Option<String>,
    /// Read-only: ignored (the number of open appeals, SPEC §13).
    pub open_appeals: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Query filters: an empty value (`?status=`) means "no filter", so each typed filter is
// documented as its type or the empty string.
// ---------------------------------------------------------------------------------------------

fn or_empty(typed: ObjectBuilder) -> Schema {
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(typed)
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(0)),
            )
            .build(),
    )
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// An RFC 3339 instant, or empty.
pub fn instant_filter() -> Schema {
    or_empty(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
}

/// A date `YYYY-MM-DD`, or empty.
pub fn date_filter() -> Schema {
    or_empty(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))))
}

/// An arrangement status, or empty.
pub fn arrangement_status_filter() -> Schema {
    or_empty(string().enum_values(Some(["scheduled", "active", "expired", "revoked"])))
}

/// A review status, or empty.
pub fn review_status_filter() -> Schema {
    or_empty(string().enum_values(Some(["pending", "reviewed"])))
}

/// An appeal status, or empty.
pub fn appeal_status_filter() -> Schema {
    or_empty(string().enum_values(Some(["open", "decided"])))
}

/// A paging cursor: an arrangement id, or empty.
pub fn arrangement_cursor() -> Schema {
    or_empty(string().pattern(Some("^arr_[A-Za-z0-9]{1,64}$")))
}

/// A paging cursor: a termination id, or empty.
pub fn termination_cursor() -> Schema {
    or_empty(string().pattern(Some("^trm_[A-Za-z0-9]{1,64}$")))
}
