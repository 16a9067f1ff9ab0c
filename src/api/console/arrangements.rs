//! The Arrangements pages (SPEC §12, §13; issue 17): list, detail, create, edit (with the
//! version it was loaded at), revoke, reviews, appeals, "what would happen if they called",
//! and letters. Every change goes through the same operations the JSON API uses
//! (`crate::api::arrangements`, `crate::api::lifecycle`), whose `errors[].field` are mapped
//! onto the form; evaluate is the service's own (§6); letters are `crate::letters`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use maud::{html, Markup};
use serde_json::{json, Value};

use super::pages::{message_page, page, unavailable};
use super::session::{self, Staff};
use crate::api::error::ApiError;
use crate::console::arrangements::{
    changes, day_name, fields_in_words, language_words, ArrangementForm, DateParts, WINDOW_SLOTS,
};
use crate::console::views::{
    self, checkboxes, date_input, error_summary, problem_for, radios, tag, text_input, textarea,
    FieldProblem, Nav,
};
use crate::console::words;
use crate::domain::{
    AppealId, Arrangement, ArrangementId, ArrangementStatus, CallerId, Day, LanguageSetting,
    PhoneNumber,
};
use crate::engine::Outcome;
use crate::service::Evaluation;
use crate::state::AppState;
use crate::store::lifecycle::{Appeal, AppealStatus, ArrangementReview};
use crate::store::{
    ArrangementFilter, ArrangementVersion, ChangeKind, DecisionFilter, DecisionLogEntry,
};

/// Arrangements a list page shows.
const PAGE_SIZE: u32 = 20;

fn pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn one<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn csrf_ok(staff: &Staff, pairs: &[(String, String)]) -> bool {
    session::same_token(one(pairs, "csrf_token"), &staff.csrf_token)
}

/// 403 for an agent: said inside the console's own frame, signed in as they are.
fn forbidden(staff: &Staff) -> Response {
    let body = html! {
        h1 class="govuk-heading-l" { "You cannot see this page" }
        p class="govuk-body" { "Only managers can see and change arrangements. Sign in with a manager's access." }
        p class="govuk-body" { a class="govuk-link" href="/console/" { "Go to the console home page" } }
    };
    with_status(
        page(
            "You cannot see this page",
            Some(staff),
            Nav::None,
            false,
            body,
        ),
        StatusCode::FORBIDDEN,
    )
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        message_page("Page not found", "There is nothing at this address."),
    )
        .into_response()
}

/// The API's validation errors as (field, message) pairs.
fn api_errors(e: &ApiError) -> Option<Vec<(String, String)>> {
    match e {
        ApiError::Validation(errors) => Some(
            errors
                .iter()
                .map(|e| (e.field.clone(), e.message.clone()))
                .collect(),
        ),
        _ => None,
    }
}

fn fp(field: &str, id: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        id: id.into(),
        field: field.into(),
        message: message.into(),
    }
}

fn today(state: &AppState) -> NaiveDate {
    state
        .clock
        .now()
        .with_timezone(&state.calendar.tz)
        .date_naive()
}

fn with_status(mut res: Response, status: StatusCode) -> Response {
    *res.status_mut() = status;
    res
}

async fn load(state: &AppState, id: &str) -> Result<Arrangement, Response> {
    let Ok(id) = ArrangementId::parse(id) else {
        return Err(not_found());
    };
    match state.store.get_arrangement(&id).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(not_found()),
        Err(_) => Err(unavailable()),
    }
}

// ---------------------------------------------------------------------------------------------
// Badges
// ---------------------------------------------------------------------------------------------

fn status_tag(a: &Arrangement, now: DateTime<Utc>) -> Markup {
    match a.status_at(now) {
        ArrangementStatus::Active => tag("Active", "green"),
        ArrangementStatus::Scheduled => tag("Scheduled", "blue"),
        ArrangementStatus::Expired => tag("Expired", "grey"),
        ArrangementStatus::Revoked => tag("Revoked", "red"),
    }
}

fn badges(state: &AppState, a: &Arrangement) -> Markup {
    let now = state.clock.now();
    html! {
        (status_tag(a, now))
        @if a.review_overdue_at(now, today(state)) { " " (tag("Review overdue", "red")) }
        @if a.open_appeals > 0 {
            " " (tag(&if a.open_appeals == 1 { "Open appeal".to_owned() } else { format!("{} open appeals", a.open_appeals) }, "orange"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    review: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    appeals: String,
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> Response {
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let filter = list_filter(&q, state.clock.now(), today(&state));
    let search = q.q.trim();
    let rows = if q.appeals == "open" {
        // The arrangements with an open appeal (one page: appeals are few).
        match with_open_appeals(&state).await {
            Ok(r) => r,
            Err(_) => return unavailable(),
        }
    } else {
        match state.store.list_arrangements(&filter).await {
            Ok(r) => r,
            Err(_) => return unavailable(),
        }
    };
    let more = q.appeals != "open" && rows.len() as u32 >= PAGE_SIZE;
    let query_with = |after: Option<&str>| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("q", search), ("status", &q.status), ("review", &q.review)] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        if let Some(a) = after {
            s.append_pair("after", a);
        }
        format!("/console/arrangements?{}", s.finish())
    };
    let tz = state.calendar.tz;
    let body = html! {
        h1 class="govuk-heading-l" { "Arrangements" }
        @if q.appeals == "open" {
            p class="govuk-body" { "Showing arrangements with an open appeal. " a class="govuk-link" href="/console/arrangements" { "Show all arrangements" } }
        }
        a href="/console/arrangements/new" class="govuk-button" role="button" draggable="false" { "Create an arrangement" }
        (filters_form(&q, search))
        @if rows.is_empty() {
            div class="govuk-inset-text" { "No arrangements match." }
        } @else {
            (arrangements_table(&state, &rows))
            p class="govuk-body-s" { "Times are " (tz.name()) " time." }
        }
        (pagination(more, filter.after.is_some(), rows.last(), &query_with))
    };
    page("Arrangements", Some(&staff), Nav::Arrangements, false, body)
}

/// The store's filter for the list page's query.
fn list_filter(q: &ListQuery, now: DateTime<Utc>, today: NaiveDate) -> ArrangementFilter {
    let mut filter = ArrangementFilter {
        now: Some(now),
        limit: PAGE_SIZE,
        ..Default::default()
    };
    filter.status = match q.status.as_str() {
        "scheduled" => Some(ArrangementStatus::Scheduled),
        "active" => Some(ArrangementStatus::Active),
        "expired" => Some(ArrangementStatus::Expired),
        "revoked" => Some(ArrangementStatus::Revoked),
        _ => None,
    };
    match q.review.as_str() {
        "overdue" => {
            filter.status = Some(ArrangementStatus::Active);
            filter.review_due_before = Some(today);
        }
        "due" => {
            filter.status = Some(ArrangementStatus::Active);
            filter.review_due_from = Some(today);
            filter.review_due_before = Some(today + chrono::Duration::days(15));
        }
        _ => {}
    }
    let search = q.q.trim();
    if !search.is_empty() {
        // A number in any format (the API's own parser), else a customer reference.
        match PhoneNumber::parse(search) {
            Ok(n) => filter.phone = Some(n),
            Err(_) => filter.customer_ref = Some(search.to_owned()),
        }
    }
    filter.after = ArrangementId::parse(&q.after).ok();
    filter
}

/// The search box and the status and review filters.
fn filters_form(q: &ListQuery, search: &str) -> Markup {
    html! {
        form method="get" action="/console/arrangements" class="fl-filters" novalidate {
            div class="govuk-grid-row" {
                div class="govuk-grid-column-one-third" {
                    (text_input("q", "Phone number or customer reference", Some("For example 02920 123456 or PSOW-2026-00123"), search, None, "govuk-!-width-full"))
                }
                div class="govuk-grid-column-one-third" {
                    div class="govuk-form-group" {
                        label class="govuk-label govuk-label--s" for="status" { "Status" }
                        select class="govuk-select" id="status" name="status" {
                            @for (v, l) in [("", "Any"), ("active", "Active"), ("scheduled", "Scheduled"), ("expired", "Expired"), ("revoked", "Revoked")] {
                                option value=(v) selected[q.status == v] { (l) }
                            }
                        }
                    }
                }
                div class="govuk-grid-column-one-third" {
                    div class="govuk-form-group" {
                        label class="govuk-label govuk-label--s" for="review" { "Review" }
                        select class="govuk-select" id="review" name="review" {
                            @for (v, l) in [("", "Any"), ("due", "Due in the next 14 days"), ("overdue", "Overdue")] {
                                option value=(v) selected[q.review == v] { (l) }
                            }
                        }
                    }
                }
            }
            button type="submit" class="govuk-button govuk-button--secondary" { "Show arrangements" }
        }
    }
}

fn arrangements_table(state: &AppState, rows: &[Arrangement]) -> Markup {
    html! {
            table class="govuk-table" {
                caption class="govuk-table__caption govuk-table__caption--m" { "Arrangements" }
                thead class="govuk-table__head" {
                    tr class="govuk-table__row" {
                        th scope="col" class="govuk-table__header" { "Customer" }
                        th scope="col" class="govuk-table__header" { "Numbers" }
                        th scope="col" class="govuk-table__header" { "Rules" }
                        th scope="col" class="govuk-table__header" { "Review due" }
                        th scope="col" class="govuk-table__header" { "Status" }
                    }
                }
                tbody class="govuk-table__body" {
                    @for a in rows {
                        tr class="govuk-table__row" {
                            td class="govuk-table__cell" {
                                a class="govuk-link" href={ "/console/arrangements/" (a.id.as_str()) } { (a.customer_ref) }
                                @if let Some(n) = &a.customer_name { br; span class="govuk-body-s" { (n) } }
                            }
                            td class="govuk-table__cell fl-nowrap" {
                                @for n in &a.phone_numbers { (n.as_str()) br; }
                            }
                            td class="govuk-table__cell" { (words::arrangement_rules(&state.config, a)) }
                            td class="govuk-table__cell fl-nowrap" { (a.review_due.format("%-d %b %Y")) }
                            td class="govuk-table__cell" { (badges(state, a)) }
                        }
                    }
                }
            }
    }
}

/// Previous and next links (keyset paging: the first page, and the page after the last row).
fn pagination(
    more: bool,
    paged: bool,
    last: Option<&Arrangement>,
    query_with: &dyn Fn(Option<&str>) -> String,
) -> Markup {
    html! {
        @if more || paged {
            nav class="govuk-pagination govuk-pagination--block" aria-label="Pages of arrangements" {
                @if paged {
                    div class="govuk-pagination__prev" {
                        a class="govuk-link govuk-pagination__link" href=(query_with(None)) rel="prev" {
                            span class="govuk-pagination__link-title" { "First page" }
                        }
                    }
                }
                @if more {
                    @if let Some(last) = last {
                        div class="govuk-pagination__next" {
                            a class="govuk-link govuk-pagination__link" href=(query_with(Some(last.id.as_str()))) rel="next" {
                                span class="govuk-pagination__link-title" { "Next page" }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn with_open_appeals(state: &AppState) -> Result<Vec<Arrangement>, crate::store::StoreError> {
    let appeals = state
        .store
        .list_appeals(Some(AppealStatus::Open), None, 1000)
        .await?;
    let mut out: Vec<Arrangement> = Vec::new();
    for ap in appeals {
        if out.iter().any(|a| a.id == ap.arrangement_id) {
            continue;
        }
        if let Some(a) = state.store.get_arrangement(&ap.arrangement_id).await? {
            out.push(a);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Create and edit
// ---------------------------------------------------------------------------------------------

/// (value, label) choices for checkboxes.
type Choices = Vec<(String, String)>;

/// The days and the `[[staff]]` as choices.
fn choices(state: &AppState) -> (Choices, Choices) {
    let days: Vec<(String, String)> = Day::ALL
        .iter()
        .map(|d| {
            (
                crate::console::arrangements::day_code(*d).to_owned(),
                day_name(*d).to_owned(),
            )
        })
        .collect();
    let staff_choices: Vec<(String, String)> = state
        .config
        .staff
        .iter()
        .map(|s| (s.id.as_str().to_owned(), s.name.clone()))
        .collect();
    (days, staff_choices)
}

fn form_page(
    state: &AppState,
    staff: &Staff,
    existing: Option<&Arrangement>,
    form: &ArrangementForm,
    problems: &[FieldProblem],
) -> Response {
    let p = |f: &str| problem_for(problems, f);
    let (title, action) = match existing {
        Some(a) => (
            format!("Change arrangement {}", a.customer_ref),
            format!("/console/arrangements/{}/edit", a.id.as_str()),
        ),
        None => (
            "Create an arrangement".to_owned(),
            "/console/arrangements".to_owned(),
        ),
    };
    let back = match existing {
        Some(a) => format!("/console/arrangements/{}", a.id.as_str()),
        None => "/console/arrangements".into(),
    };
    let (days, staff_choices) = choices(state);
    let body = html! {
        div class="govuk-grid-row" {
            div class="govuk-grid-column-two-thirds" {
                a href=(back) class="govuk-back-link" { "Back" }
                (error_summary(problems))
                h1 class="govuk-heading-l" { (title) }
                form method="post" action=(action) novalidate {
                    (views::csrf(staff))
                    @if existing.is_some() {
                        input type="hidden" name="version" value=(form.version);
                    }
                    h2 class="govuk-heading-m" { "The customer" }
                    (text_input("customer_ref", "Customer reference", None, &form.customer_ref, p("customer_ref"), "govuk-input--width-20"))
                    (text_input("customer_name", "Customer name (optional)", None, &form.customer_name, p("customer_name"), "govuk-!-width-two-thirds"))
                    (textarea("phone_numbers", "Phone numbers", Some("One a line, in any format, for example 02920 123456"), &form.phone_numbers, p("phone_numbers")))
                    h2 class="govuk-heading-m" { "The rules" }
                    (radios("kind", "kind", "May the customer call?", None,
                        &[("restricted", "Yes, under the rules below"), ("blocked", "No, not at all")],
                        &form.kind, p("kind"), false))
                    @for i in 0..WINDOW_SLOTS { (window_fieldset(form, i, &days, problems)) }
                    (allowance_fieldset(form, problems))
                    (checkboxes("designated_staff", "designated_staff", "Designated staff (optional)", Some("Calls are put through to the first one chosen."), &staff_choices, &form.designated_staff, p("designated_staff")))
                    (text_input("max_call_minutes", "Longest call in minutes (optional)", None, &form.max_call_minutes, p("max_call_minutes"), "govuk-input--width-3"))
                    (radios("language", "language", "Language for calls and letters", None,
                        &[("en", "English"), ("cy", "Welsh"), ("en+cy", "English, then Welsh"), ("cy+en", "Welsh, then English")],
                        &form.language, p("language"), false))
                    (dates_and_why(form, problems))
                    button type="submit" class="govuk-button" { "Save arrangement" }
                }
            }
        }
    };
    let res = page(
        &title,
        Some(staff),
        Nav::Arrangements,
        !problems.is_empty(),
        body,
    );
    if problems.is_empty() {
        res
    } else {
        with_status(res, StatusCode::UNPROCESSABLE_ENTITY)
    }
}

/// Days and times `i` of the form: the days as checkboxes, from and to.
fn window_fieldset(
    form: &ArrangementForm,
    i: usize,
    days: &[(String, String)],
    problems: &[FieldProblem],
) -> Markup {
    let p = |f: &str| problem_for(problems, f);
    html! {
                        @let slot = form.windows.get(i).cloned().unwrap_or_default();
                        @let key = format!("w{i}");
                        @let problem = p(&key);
                        div class={ "govuk-form-group" @if problem.is_some() { " govuk-form-group--error" } } {
                            fieldset class="govuk-fieldset" aria-describedby=[problem.map(|p| format!("{}-error", p.field))] {
                                legend class="govuk-fieldset__legend govuk-fieldset__legend--s" {
                                    "Days and times " (i + 1) @if i > 0 { " (optional)" }
                                }
                                (views::error_message(problem))
                                div class="fl-days" { (checkboxes(&format!("w{i}_days"), &format!("w{i}_days"), "Days", None, days, &slot.days, None)) }
                                div class="fl-times" {
                                    (text_input(&format!("w{i}_start"), "From", Some("For example 10:00"), &slot.start, None, "govuk-input--width-5"))
                                    (text_input(&format!("w{i}_end"), "To", Some("For example 12:00"), &slot.end, None, "govuk-input--width-5"))
                                }
                            }
                        }
    }
}

/// The number of calls allowed, and whether a day or a week.
fn allowance_fieldset(form: &ArrangementForm, problems: &[FieldProblem]) -> Markup {
    let p = |f: &str| problem_for(problems, f);
    html! {
                    @let allowance_p = p("allowance");
                    div class={ "govuk-form-group" @if allowance_p.is_some() { " govuk-form-group--error" } } {
                        fieldset class="govuk-fieldset" aria-describedby=[allowance_p.map(|p| format!("{}-error", p.field))] {
                            legend class="govuk-fieldset__legend govuk-fieldset__legend--s" { "Number of calls allowed (optional)" }
                            (views::error_message(allowance_p))
                            (text_input("allowance_count", "Calls", None, &form.allowance_count, None, "govuk-input--width-3"))
                            (radios("allowance_per", "allowance_per", "Each", None, &[("day", "Day"), ("week", "Week")], &form.allowance_per, None, true))
                        }
                    }
    }
}

/// The form's dates (GOV.UK date inputs) and its reasons.
fn dates_and_why(form: &ArrangementForm, problems: &[FieldProblem]) -> Markup {
    let p = |f: &str| problem_for(problems, f);
    html! {
                    h2 class="govuk-heading-m" { "Dates" }
                    (date_input("starts_at", "Rules start (optional)", Some("For example 27 3 2027. Empty means now."), &form.starts_at, p("starts_at")))
                    (date_input("ends_at", "Rules end", Some("The rules end at the start of this day."), &form.ends_at, p("ends_at")))
                    (date_input("review_due", "Next review", Some("On or before the end date."), &form.review_due, p("review_due")))
                    h2 class="govuk-heading-m" { "Why" }
                    (textarea("reason", "Reason for the arrangement", Some("For the record. The customer does not see this."), &form.reason, p("reason")))
                    (text_input("decided_by", "Decided by", Some("For example Director of Investigations"), &form.decided_by, p("decided_by"), "govuk-!-width-two-thirds"))
                    (textarea("customer_explanation", "Explanation for the customer (optional)", Some("Words for the customer's letter: why the rules are needed."), &form.customer_explanation, p("customer_explanation")))
                    (radios("equality_advice_sought", "equality_advice_sought", "Was equality advice sought?", None,
                        &[("yes", "Yes"), ("no", "No")], &form.equality_advice_sought, p("equality_advice_sought"), true))
                    (text_input("advocate", "Advocate (optional)", Some("Name and how to contact them"), &form.advocate, p("advocate"), "govuk-!-width-two-thirds"))
    }
}

pub async fn new_form(State(state): State<AppState>, staff: Staff) -> Response {
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let mut form = ArrangementForm::blank();
    form.kind = "restricted".into();
    form.language = state.config.organisation.language.to_string();
    form.equality_advice_sought = "no".into();
    form_page(&state, &staff, None, &form, &[])
}

pub async fn create(State(state): State<AppState>, staff: Staff, body: Bytes) -> Response {
    let pairs = pairs(&body);
    if !csrf_ok(&staff, &pairs) {
        return session::csrf_refused();
    }
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let form = ArrangementForm::from_pairs(&pairs);
    let json = form.to_body(state.calendar.tz, None);
    match crate::api::arrangements::create_arrangement(&state, &json, &staff.name).await {
        Ok(a) => Redirect::to(&format!(
            "/console/arrangements/{}?saved=created",
            a.id.as_str()
        ))
        .into_response(),
        Err(e) => form_error(&state, &staff, None, &form, e),
    }
}

fn form_error(
    state: &AppState,
    staff: &Staff,
    existing: Option<&Arrangement>,
    form: &ArrangementForm,
    e: ApiError,
) -> Response {
    if let Some(errors) = api_errors(&e) {
        return form_page(state, staff, existing, form, &form.problems(&errors));
    }
    match e {
        ApiError::Conflict(detail) if detail.contains("revoked") => with_status(
            message_page(
                "This arrangement has been revoked",
                "A revoked arrangement cannot be changed. Nothing was saved.",
            ),
            StatusCode::CONFLICT,
        ),
        ApiError::Conflict(detail) => {
            let problems = [fp(
                "phone_numbers",
                "phone_numbers",
                format!("A number is already under another arrangement for these dates ({detail})"),
            )];
            with_status(
                form_page(state, staff, existing, form, &problems),
                StatusCode::CONFLICT,
            )
        }
        ApiError::NotFound(_) => not_found(),
        other => {
            tracing::warn!(error = %other, "console arrangement change failed");
            unavailable()
        }
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let a = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if a.revoked_at.is_some() {
        return message_page(
            "This arrangement has been revoked",
            "A revoked arrangement cannot be changed. Create a new one if rules are needed again.",
        );
    }
    form_page(
        &state,
        &staff,
        Some(&a),
        &ArrangementForm::of(&a, state.calendar.tz),
        &[],
    )
}

pub async fn edit(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = pairs(&body);
    if !csrf_ok(&staff, &pairs) {
        return session::csrf_refused();
    }
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let current = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let form = ArrangementForm::from_pairs(&pairs);
    let Ok(version) = form.version.trim().parse::<i64>() else {
        return conflict_page(&state, &staff, &current, &form);
    };
    let json = form.to_body(state.calendar.tz, Some(&current));
    match crate::api::arrangements::update_arrangement(
        &state,
        &current.id,
        &json,
        version,
        &staff.name,
    )
    .await
    {
        Ok(a) => Redirect::to(&format!(
            "/console/arrangements/{}?saved=updated",
            a.id.as_str()
        ))
        .into_response(),
        Err(ApiError::PreconditionFailed(_)) => {
            // Read again: the version that beat this form.
            let latest = load(&state, &id).await.unwrap_or(current);
            conflict_page(&state, &staff, &latest, &form)
        }
        Err(e) => form_error(&state, &staff, Some(&current), &form, e),
    }
}

/// "Someone else changed this": their saved fields against this form's, nothing overwritten.
fn conflict_page(
    state: &AppState,
    staff: &Staff,
    theirs: &Arrangement,
    form: &ArrangementForm,
) -> Response {
    let tz = state.calendar.tz;
    let now = state.clock.now();
    let json = form.to_body(tz, Some(theirs));
    let yours = crate::api::arrangements::check(&json, state, now, Some(theirs)).ok();
    let their_words = fields_in_words(&state.config, tz, theirs);
    let differences: Vec<(&str, String, Option<String>)> = match &yours {
        Some(y) => changes(&state.config, tz, theirs, y)
            .into_iter()
            .map(|(l, t, y)| (l, t, Some(y)))
            .collect(),
        None => Vec::new(),
    };
    let edit = format!("/console/arrangements/{}/edit", theirs.id.as_str());
    let body = html! {
        div class="govuk-grid-row" {
            div class="govuk-grid-column-full" {
                div class="govuk-notification-banner" role="region" aria-labelledby="notification-banner-title" data-module="govuk-notification-banner" {
                    div class="govuk-notification-banner__header" {
                        h2 class="govuk-notification-banner__title" id="notification-banner-title" { "Important" }
                    }
                    div class="govuk-notification-banner__content" {
                        p class="govuk-notification-banner__heading" { "Someone else changed this arrangement while you were editing it" }
                        p class="govuk-body" { "Your changes have not been saved. Nothing was overwritten." }
                    }
                }
                h1 class="govuk-heading-l" { "Someone else changed this" }
                p class="govuk-body" {
                    (theirs.customer_ref) " is now at version " (theirs.version) ", saved " (words::local(tz, theirs.updated_at)) "."
                }
                @if yours.is_none() {
                    p class="govuk-body" { "Your form also had problems, so it cannot be compared field by field. Their version is below." }
                    dl class="govuk-summary-list" {
                        @for (label, value) in &their_words { (views::summary_row(label, html! { (value) })) }
                    }
                } @else if differences.is_empty() {
                    p class="govuk-body" { "Your form and their version say the same thing." }
                } @else {
                    table class="govuk-table" {
                        caption class="govuk-table__caption govuk-table__caption--m" { "Where your form and their version differ" }
                        thead class="govuk-table__head" {
                            tr class="govuk-table__row" {
                                th scope="col" class="govuk-table__header" { "Field" }
                                th scope="col" class="govuk-table__header" { "Theirs (saved)" }
                                th scope="col" class="govuk-table__header" { "Yours (not saved)" }
                            }
                        }
                        tbody class="govuk-table__body" {
                            @for (label, t, y) in &differences {
                                tr class="govuk-table__row" {
                                    th scope="row" class="govuk-table__header" { (label) }
                                    td class="govuk-table__cell" { (t) }
                                    td class="govuk-table__cell" { (y.clone().unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
                p class="govuk-body" { "Open the form again to start from their version, then make your changes again." }
                a href=(edit) class="govuk-button" role="button" draggable="false" { "Reload the form" }
                p class="govuk-body" { a class="govuk-link" href={ "/console/arrangements/" (theirs.id.as_str()) } { "Back to the arrangement" } }
            }
        }
    };
    with_status(
        page(
            "Someone else changed this",
            Some(staff),
            Nav::Arrangements,
            false,
            body,
        ),
        StatusCode::CONFLICT,
    )
}

// ---------------------------------------------------------------------------------------------
// Revoke
// ---------------------------------------------------------------------------------------------

fn revoke_page(
    state: &AppState,
    staff: &Staff,
    a: &Arrangement,
    reason: &str,
    problems: &[FieldProblem],
) -> Response {
    let body = html! {
        div class="govuk-grid-row" {
            div class="govuk-grid-column-two-thirds" {
                a href={ "/console/arrangements/" (a.id.as_str()) } class="govuk-back-link" { "Back" }
                (error_summary(problems))
                span class="govuk-caption-l" { (a.customer_ref) }
                h1 class="govuk-heading-l" { "Are you sure you want to revoke this arrangement?" }
                p class="govuk-body" { "The rules stop now: " (words::arrangement_rules(&state.config, a)) }
                div class="govuk-warning-text" {
                    span class="govuk-warning-text__icon" aria-hidden="true" { "!" }
                    strong class="govuk-warning-text__text" {
                        span class="govuk-visually-hidden" { "Warning" }
                        "A revoked arrangement cannot be changed or brought back."
                    }
                }
                form method="post" action={ "/console/arrangements/" (a.id.as_str()) "/revoke" } novalidate {
                    (views::csrf(staff))
                    (textarea("reason", "Why are you revoking it?", Some("This is kept in the arrangement's history."), reason, problem_for(problems, "reason")))
                    div class="govuk-button-group" {
                        button type="submit" class="govuk-button govuk-button--warning" { "Revoke arrangement" }
                        a class="govuk-link" href={ "/console/arrangements/" (a.id.as_str()) } { "Cancel" }
                    }
                }
            }
        }
    };
    let res = page(
        "Revoke arrangement",
        Some(staff),
        Nav::Arrangements,
        !problems.is_empty(),
        body,
    );
    if problems.is_empty() {
        res
    } else {
        with_status(res, StatusCode::UNPROCESSABLE_ENTITY)
    }
}

pub async fn revoke_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    match load(&state, &id).await {
        Ok(a) if a.revoked_at.is_some() => message_page(
            "This arrangement has already been revoked",
            "There is nothing more to do.",
        ),
        Ok(a) => revoke_page(&state, &staff, &a, "", &[]),
        Err(r) => r,
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = pairs(&body);
    if !csrf_ok(&staff, &pairs) {
        return session::csrf_refused();
    }
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let a = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let reason = one(&pairs, "reason");
    match crate::api::arrangements::revoke_arrangement(&state, &a.id, reason, &staff.name).await {
        Ok(_) => Redirect::to(&format!(
            "/console/arrangements/{}?saved=revoked",
            a.id.as_str()
        ))
        .into_response(),
        Err(ApiError::Validation(_)) => revoke_page(
            &state,
            &staff,
            &a,
            reason,
            &[fp(
                "reason",
                "reason",
                "Enter why you are revoking it (up to 4000 characters)",
            )],
        ),
        Err(ApiError::Conflict(_)) => message_page(
            "This arrangement has already been revoked",
            "There is nothing more to do.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "console revoke failed");
            unavailable()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Detail: rules, history, reviews, appeals, decisions, what-if, letters
// ---------------------------------------------------------------------------------------------

/// What the detail page shows besides the record: the sub-forms as typed, their problems, a
/// what-if answer, a notice.
#[derive(Default)]
struct Extras {
    problems: Vec<FieldProblem>,
    notice: Option<String>,
    review: Vec<(String, String)>,
    appeal: Vec<(String, String)>,
    decision: Option<(String, Vec<(String, String)>)>,
    what_if: Option<WhatIf>,
}

/// The "what would happen if they called" form as typed, and its answer.
#[derive(Default)]
struct WhatIf {
    number: String,
    date: DateParts,
    time: String,
    answer: Option<(PhoneNumber, DateTime<Utc>, Evaluation)>,
}

fn get<'a>(v: &'a [(String, String)], k: &str) -> &'a str {
    one(v, k)
}

async fn detail_page(
    state: &AppState,
    staff: &Staff,
    a: &Arrangement,
    mut extras: Extras,
) -> Response {
    let tz = state.calendar.tz;
    let now = state.clock.now();
    let (history, reviews, appeals, decisions) = match (
        state.store.arrangement_history(&a.id).await,
        state.store.list_reviews(&a.id).await,
        state.store.list_appeals(None, Some(&a.id), 200).await,
        decisions_for(state, a).await,
    ) {
        (Ok(h), Ok(r), Ok(ap), Ok(d)) => (h, r, ap, d),
        _ => return unavailable(),
    };
    let revoked = a.revoked_at.is_some();
    let base = format!("/console/arrangements/{}", a.id.as_str());
    let what_if = extras.what_if.take().unwrap_or_default();
    let body = html! {
        a href="/console/arrangements" class="govuk-back-link" { "Back to arrangements" }
        (error_summary(&extras.problems))
        @if let Some(n) = &extras.notice {
            (views::banner(true, "Success", n, None))
        }
        span class="govuk-caption-l" { "Arrangement" }
        h1 class="govuk-heading-l" { (a.customer_ref) @if let Some(n) = &a.customer_name { ": " (n) } }
        p class="govuk-body" { (badges(state, a)) }
        div class="govuk-inset-text" {
            h2 class="govuk-heading-s" { "The rules" }
            p class="govuk-body" { (words::arrangement_rules(&state.config, a)) }
        }
        @if !revoked {
            div class="govuk-button-group" {
                a href={ (base) "/edit" } class="govuk-button" role="button" draggable="false" { "Change the rules" }
                a href={ (base) "/revoke" } class="govuk-button govuk-button--warning" role="button" draggable="false" { "Revoke" }
            }
        }
        h2 class="govuk-heading-m" { "Details" }
        dl class="govuk-summary-list" {
            @for (label, value) in fields_in_words(&state.config, tz, a) {
                (views::summary_row(label, html! { (value) }))
            }
            (views::summary_row("Version", html! { (a.version) ", saved " (words::local(tz, a.updated_at)) }))
        }

        (what_if_section(state, a, &what_if, &extras.problems))

        (letters_section(a))

        (reviews_section(state, staff, a, &reviews, &extras))

        (appeals_section(state, staff, a, &appeals, &extras))

        h2 class="govuk-heading-m" id="history" { "History" }
        (history_list(state, &history))

        (decisions_section(state, &decisions))
        p class="govuk-body-s" { "Times are " (tz.name()) " time. Shown at " (words::local(tz, now)) "." }
    };
    let has_errors = !extras.problems.is_empty();
    let res = page(
        &format!("Arrangement {}", a.customer_ref),
        Some(staff),
        Nav::Arrangements,
        has_errors,
        body,
    );
    if has_errors {
        with_status(res, StatusCode::UNPROCESSABLE_ENTITY)
    } else {
        res
    }
}

/// "What would happen if they called at …": the form and, once asked, the §6 answer.
fn what_if_section(
    state: &AppState,
    a: &Arrangement,
    what_if: &WhatIf,
    problems: &[FieldProblem],
) -> Markup {
    let tz = state.calendar.tz;
    let base = format!("/console/arrangements/{}", a.id.as_str());
    let p = |f: &str| problem_for(problems, f);
    html! {
        h2 class="govuk-heading-m" id="what-if" { "What would happen if they called?" }
        form method="get" action={ (base) "/what-if#what-if" } novalidate {
            @if a.phone_numbers.len() > 1 {
                @let options: Vec<(&str, &str)> = a.phone_numbers.iter().map(|n| (n.as_str(), n.as_str())).collect();
                (radios("number", "number", "From which number?", None, &options,
                    if what_if.number.is_empty() { a.phone_numbers[0].as_str() } else { &what_if.number }, None, false))
            } @else {
                @if let Some(n) = a.phone_numbers.first() {
                    input type="hidden" name="number" value=(n.as_str());
                }
            }
            (date_input("at", "On", Some("For example 3 12 2026"), &what_if.date, p("at")))
            (text_input("at_time", "At", Some("Local time, for example 14:30"), &what_if.time, p("at_time"), "govuk-input--width-5"))
            button type="submit" class="govuk-button govuk-button--secondary" { "Check" }
        }
        @if let Some((number, at, e)) = &what_if.answer {
            div class="fl-answer" id="what-if-answer" {
                h3 class="govuk-heading-s" { "A call from " (number.as_str()) " on " (words::local(tz, *at)) }
                p class="govuk-body" { strong { (evaluation_words(state, e)) } }
                @if let Some(next) = e.next_permitted_at {
                    p class="govuk-body" { "The next time they may call: " strong { (words::local(tz, next)) } "." }
                }
                @if e.outcome == Outcome::Refuse && e.next_permitted_at.is_none() {
                    p class="govuk-body" { "There is no time they may call under these rules." }
                }
                @if !e.messages.is_empty() {
                    p class="govuk-body" { "What the caller hears:" }
                    @for m in &e.messages {
                        blockquote class="govuk-inset-text fl-spoken" lang=(m.language.as_str()) { (m.text) }
                    }
                }
            }
        }

    }
}

/// Links to each letter's preview, in each language.
fn letters_section(a: &Arrangement) -> Markup {
    let base = format!("/console/arrangements/{}", a.id.as_str());
    html! {
        h2 class="govuk-heading-m" id="letters" { "Letters to the customer" }
        table class="govuk-table" {
            caption class="govuk-table__caption govuk-table__caption--s govuk-visually-hidden" { "Letters" }
            thead class="govuk-table__head" {
                tr class="govuk-table__row" {
                    th scope="col" class="govuk-table__header" { "Letter" }
                    th scope="col" class="govuk-table__header" { "Preview" }
                }
            }
            tbody class="govuk-table__body" {
                @for (kind, label) in [("notice", "The rules and how to appeal"), ("review", "After a review"), ("ended", "The rules have ended")] {
                    tr class="govuk-table__row" {
                        td class="govuk-table__cell" { (label) }
                        td class="govuk-table__cell" {
                            @for (lang, lname) in [("en", "English"), ("cy", "Welsh"), (a.language.as_str(), "As the arrangement says")] {
                                a class="govuk-link fl-link-gap" href={ (base) "/letter?kind=" (kind) "&language=" (lang.replace('+', "%2B")) } {
                                    (lname) span class="govuk-visually-hidden" { ": " (label) }
                                }
                                " "
                            }
                        }
                    }
                }
            }
        }

    }
}

/// The reviews so far and, unless revoked, the form to record one.
fn reviews_section(
    state: &AppState,
    staff: &Staff,
    a: &Arrangement,
    reviews: &[ArrangementReview],
    extras: &Extras,
) -> Markup {
    let revoked = a.revoked_at.is_some();
    let base = format!("/console/arrangements/{}", a.id.as_str());
    let p = |f: &str| problem_for(&extras.problems, f);
    html! {
        h2 class="govuk-heading-m" id="reviews" { "Reviews" }
        @if reviews.is_empty() {
            p class="govuk-body" { "No reviews yet. The next review is due " (a.review_due.format("%-d %B %Y")) "." }
        } @else {
            (reviews_table(state, reviews))
        }
        @if !revoked {
            form method="post" action={ (base) "/reviews" } novalidate {
                (views::csrf(staff))
                h3 class="govuk-heading-s" { "Record a review" }
                (radios("review-outcome", "outcome", "What did the review decide?", None,
                    &[("continue", "The rules continue"), ("vary", "The rules are to change (change them afterwards)"), ("end", "The rules end now")],
                    get(&extras.review, "outcome"), p("review-outcome"), false))
                (date_input("review-next_review_due", "Next review (if the rules continue)", Some("On or before the end date."),
                    &DateParts { day: get(&extras.review, "review-next_review_due-day").into(), month: get(&extras.review, "review-next_review_due-month").into(), year: get(&extras.review, "review-next_review_due-year").into() },
                    p("review-next_review_due")))
                (textarea("review-notes", "Notes (optional)", None, get(&extras.review, "review-notes"), p("review-notes")))
                button type="submit" class="govuk-button govuk-button--secondary" { "Save review" }
            }
        }

    }
}

/// The appeals (each with its decision form while open) and the form to record one.
fn appeals_section(
    state: &AppState,
    staff: &Staff,
    a: &Arrangement,
    appeals: &[Appeal],
    extras: &Extras,
) -> Markup {
    let revoked = a.revoked_at.is_some();
    let base = format!("/console/arrangements/{}", a.id.as_str());
    let p = |f: &str| problem_for(&extras.problems, f);
    html! {
        h2 class="govuk-heading-m" id="appeals" { "Appeals" }
        @if appeals.is_empty() {
            p class="govuk-body" { "No appeals." }
        }
        @for (i, ap) in appeals.iter().enumerate() {
            (appeal_block(state, staff, ap, i, extras))
        }
        @if !revoked {
            form method="post" action={ (base) "/appeals" } novalidate {
                (views::csrf(staff))
                h3 class="govuk-heading-s" { "Record an appeal" }
                (date_input("appeal-received_at", "Received on", Some("Empty means today."),
                    &DateParts { day: get(&extras.appeal, "appeal-received_at-day").into(), month: get(&extras.appeal, "appeal-received_at-month").into(), year: get(&extras.appeal, "appeal-received_at-year").into() },
                    p("appeal-received_at")))
                (textarea("appeal-grounds", "The customer's grounds", None, get(&extras.appeal, "appeal-grounds"), p("appeal-grounds")))
                button type="submit" class="govuk-button govuk-button--secondary" { "Save appeal" }
            }
        }

    }
}

/// The decision log for the arrangement's numbers.
fn decisions_section(state: &AppState, decisions: &[DecisionLogEntry]) -> Markup {
    let tz = state.calendar.tz;
    html! {
        h2 class="govuk-heading-m" id="decisions" { "Calls decided for these numbers" }
        @if decisions.is_empty() {
            p class="govuk-body" { "No calls from these numbers have been decided." }
        } @else {
            table class="govuk-table" {
                caption class="govuk-table__caption govuk-table__caption--s govuk-visually-hidden" { "Decision log" }
                thead class="govuk-table__head" {
                    tr class="govuk-table__row" {
                        th scope="col" class="govuk-table__header" { "When" }
                        th scope="col" class="govuk-table__header" { "Number" }
                        th scope="col" class="govuk-table__header" { "What happened" }
                        th scope="col" class="govuk-table__header" { "Counted" }
                    }
                }
                tbody class="govuk-table__body" {
                    @for d in decisions {
                        tr class="govuk-table__row" {
                            td class="govuk-table__cell fl-nowrap" { (words::local(tz, d.decided_at)) }
                            td class="govuk-table__cell fl-nowrap" { (d.number.as_str()) }
                            td class="govuk-table__cell" { (words::decision(&state.config, d.decision.outcome, d.decision.reason, d.decision.route_to.as_ref())) }
                            td class="govuk-table__cell" { @if d.counted { "Yes" } @else { "No" } }
                        }
                    }
                }
            }
        }
    }
}

fn evaluation_words(state: &AppState, e: &Evaluation) -> String {
    let words = words::decision(&state.config, e.outcome, e.reason, e.route_to.as_ref());
    match e.outcome {
        Outcome::Refuse => format!("{words}. The call would be refused."),
        _ => format!("{words}."),
    }
}

async fn decisions_for(
    state: &AppState,
    a: &Arrangement,
) -> Result<Vec<DecisionLogEntry>, crate::store::StoreError> {
    let mut all = Vec::new();
    for n in &a.phone_numbers {
        all.extend(
            state
                .store
                .list_decisions(&DecisionFilter {
                    phone: Some(n.clone()),
                    limit: 50,
                    ..Default::default()
                })
                .await?,
        );
    }
    all.sort_by_key(|d| std::cmp::Reverse(d.decided_at));
    all.truncate(50);
    Ok(all)
}

fn reviews_table(state: &AppState, reviews: &[ArrangementReview]) -> Markup {
    let tz = state.calendar.tz;
    html! {
        table class="govuk-table" {
            caption class="govuk-table__caption govuk-table__caption--s govuk-visually-hidden" { "Reviews" }
            thead class="govuk-table__head" {
                tr class="govuk-table__row" {
                    th scope="col" class="govuk-table__header" { "When" }
                    th scope="col" class="govuk-table__header" { "Decision" }
                    th scope="col" class="govuk-table__header" { "Next review" }
                    th scope="col" class="govuk-table__header" { "By" }
                    th scope="col" class="govuk-table__header" { "Notes" }
                }
            }
            tbody class="govuk-table__body" {
                @for r in reviews.iter().rev() {
                    tr class="govuk-table__row" {
                        td class="govuk-table__cell fl-nowrap" { (words::local(tz, r.reviewed_at)) }
                        td class="govuk-table__cell" { (match r.outcome.as_str() { "continue" => "The rules continue", "vary" => "The rules are to change", _ => "The rules ended" }) }
                        td class="govuk-table__cell fl-nowrap" { (r.next_review_due.map(|d| d.format("%-d %b %Y").to_string()).unwrap_or_else(|| "—".into())) }
                        td class="govuk-table__cell" { (r.reviewer) }
                        td class="govuk-table__cell" { (r.notes.clone().unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

fn appeal_block(
    state: &AppState,
    staff: &Staff,
    ap: &Appeal,
    index: usize,
    extras: &Extras,
) -> Markup {
    let tz = state.calendar.tz;
    let n = index + 1;
    let prefix = format!("decision-{n}");
    let typed: &[(String, String)] = match &extras.decision {
        Some((id, v)) if id == ap.id.as_str() => v,
        _ => &[],
    };
    let p = |f: &str| problem_for(&extras.problems, f);
    html! {
        div class="govuk-summary-card" {
            div class="govuk-summary-card__title-wrapper" {
                h3 class="govuk-summary-card__title" {
                    "Appeal received " (words::local(tz, ap.received_at)) " "
                    @match &ap.decision {
                        None => (tag("Open", "orange")),
                        Some(_) => (tag("Decided", "grey")),
                    }
                }
            }
            div class="govuk-summary-card__content" {
                dl class="govuk-summary-list" {
                    (views::summary_row("Grounds", html! { (ap.grounds) }))
                    (views::summary_row("Recorded by", html! { (ap.recorded_by) }))
                    @if let Some(d) = &ap.decision {
                        (views::summary_row("Decision", html! { (match d.outcome.as_str() { "upheld" => "Upheld: the rules ended", "dismissed" => "Dismissed: the rules stay", _ => "Varied: the rules are to change" }) }))
                        (views::summary_row("Decided by", html! { (d.decided_by) ", " (words::local(tz, d.decided_at)) }))
                        (views::summary_row("Decision notes", html! { (d.notes.clone().unwrap_or_else(|| "None".into())) }))
                    }
                }
                @if ap.decision.is_none() {
                    form method="post" action={ "/console/appeals/" (ap.id.as_str()) "/decision" } novalidate {
                        (views::csrf(staff))
                        (radios(&format!("{prefix}-outcome"), "outcome", "Decision on the appeal", None,
                            &[("upheld", "Upheld: the rules end now"), ("dismissed", "Dismissed: the rules stay"), ("varied", "Varied: the rules are to change")],
                            one(typed, "outcome"), p(&format!("{prefix}-outcome")), false))
                        (text_input(&format!("{prefix}-decided_by"), "Decided by", Some("For example Head of Service"), one(typed, &format!("{prefix}-decided_by")), p(&format!("{prefix}-decided_by")), "govuk-!-width-two-thirds"))
                        (textarea(&format!("{prefix}-notes"), "Notes (optional)", None, one(typed, &format!("{prefix}-notes")), p(&format!("{prefix}-notes"))))
                        button type="submit" class="govuk-button govuk-button--secondary" { "Save decision" }
                    }
                }
            }
        }
    }
}

fn history_list(state: &AppState, history: &[ArrangementVersion]) -> Markup {
    let tz = state.calendar.tz;
    html! {
        ol class="govuk-list fl-history" reversed {
            @for (i, v) in history.iter().enumerate().rev() {
                li class="fl-history__item" {
                    h3 class="govuk-heading-s" {
                        "Version " (v.version) ": " (change_words(v.change))
                    }
                    p class="govuk-body-s" { "By " (v.changed_by) ", " (words::local(tz, v.changed_at)) }
                    @if i > 0 {
                        @let changed = changes(&state.config, tz, &history[i - 1].arrangement, &v.arrangement);
                        @if changed.is_empty() {
                            p class="govuk-body-s" { "No rule or detail changed." }
                        } @else {
                            ul class="govuk-list govuk-list--bullet govuk-body-s" {
                                @for (label, old, new) in changed {
                                    li { strong { (label) } ": " (old) " → " (new) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn change_words(c: ChangeKind) -> &'static str {
    match c {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "changed",
        ChangeKind::Revoked => "revoked",
        ChangeKind::Reviewed => "reviewed",
        ChangeKind::Appealed => "appeal received",
        ChangeKind::AppealDecided => "appeal decided",
    }
}

#[derive(serde::Deserialize, Default)]
pub struct DetailQuery {
    #[serde(default)]
    saved: String,
}

pub async fn detail(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let a = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let notice = match q.saved.as_str() {
        "created" => Some("The arrangement was created"),
        "updated" => Some("The arrangement was changed"),
        "revoked" => Some("The arrangement was revoked"),
        "review" => Some("The review was saved"),
        "appeal" => Some("The appeal was saved"),
        "decision" => Some("The decision on the appeal was saved"),
        _ => None,
    };
    detail_page(
        &state,
        &staff,
        &a,
        Extras {
            notice: notice.map(str::to_owned),
            ..Default::default()
        },
    )
    .await
}

/// `GET …/what-if`: the §6 evaluation for one of its numbers at a local date and time.
pub async fn what_if(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let a = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let tz = state.calendar.tz;
    let mut w = WhatIf {
        number: one(&q, "number").to_owned(),
        date: DateParts {
            day: one(&q, "at-day").to_owned(),
            month: one(&q, "at-month").to_owned(),
            year: one(&q, "at-year").to_owned(),
        },
        time: one(&q, "at_time").to_owned(),
        answer: None,
    };
    let mut problems = Vec::new();
    let date = w.date.date();
    if date.is_none() {
        problems.push(fp(
            "at",
            "at-day",
            "Enter a real date, for example 3 12 2026",
        ));
    }
    let time = NaiveTime::parse_from_str(w.time.trim(), "%H:%M").ok();
    if time.is_none() {
        problems.push(fp("at_time", "at_time", "Enter a time like 14:30"));
    }
    let number = a
        .phone_numbers
        .iter()
        .find(|n| n.as_str() == w.number)
        .or(a.phone_numbers.first())
        .cloned();
    let at = match (date, time) {
        (Some(d), Some(t)) => tz
            .from_local_datetime(&d.and_time(t))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    };
    if let (Some(n), Some(at)) = (number, at) {
        match state.evaluate(&CallerId::Number(n.clone()), at).await {
            Ok(e) => w.answer = Some((n, at, e)),
            Err(_) => return unavailable(),
        }
    }
    detail_page(
        &state,
        &staff,
        &a,
        Extras {
            problems,
            what_if: Some(w),
            ..Default::default()
        },
    )
    .await
}

/// A review from the page's form, through the API's own operation.
pub async fn review(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = pairs(&body);
    if !csrf_ok(&staff, &pairs) {
        return session::csrf_refused();
    }
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let a = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut json = serde_json::Map::new();
    let outcome = one(&pairs, "outcome");
    if !outcome.is_empty() {
        json.insert("outcome".into(), json!(outcome));
    }
    let notes = one(&pairs, "review-notes");
    if !notes.trim().is_empty() {
        json.insert("notes".into(), json!(notes));
    }
    let next = DateParts {
        day: one(&pairs, "review-next_review_due-day").into(),
        month: one(&pairs, "review-next_review_due-month").into(),
        year: one(&pairs, "review-next_review_due-year").into(),
    };
    if !next.is_empty() {
        let text = match next.date() {
            Some(d) => d.format("%Y-%m-%d").to_string(),
            None => "not a date".into(),
        };
        json.insert("next_review_due".into(), json!(text));
    }
    match crate::api::lifecycle::record_review(&state, &a.id, &Value::Object(json), &staff.name)
        .await
    {
        Ok(_) => Redirect::to(&format!(
            "/console/arrangements/{}?saved=review#reviews",
            a.id.as_str()
        ))
        .into_response(),
        Err(e) => match api_errors(&e) {
            Some(errors) => {
                let problems = review_problems(&errors);
                detail_page(
                    &state,
                    &staff,
                    &a,
                    Extras {
                        problems,
                        review: pairs,
                        ..Default::default()
                    },
                )
                .await
            }
            None => lifecycle_failure(e),
        },
    }
}

fn review_problems(errors: &[(String, String)]) -> Vec<FieldProblem> {
    errors
        .iter()
        .map(|(f, m)| match f.as_str() {
            "outcome" => fp(
                "review-outcome",
                "review-outcome",
                "Select what the review decided",
            ),
            "next_review_due" if m.contains("required") => fp(
                "review-next_review_due",
                "review-next_review_due-day",
                "Enter the date of the next review, because the rules continue",
            ),
            "next_review_due" if m.contains("only given") => fp(
                "review-next_review_due",
                "review-next_review_due-day",
                "Leave the next review empty unless the rules continue",
            ),
            "next_review_due" if m.contains("on or before") => fp(
                "review-next_review_due",
                "review-next_review_due-day",
                "The next review must be on or before the end date",
            ),
            "next_review_due" => fp(
                "review-next_review_due",
                "review-next_review_due-day",
                "The next review must be a real date",
            ),
            _ => fp("review-notes", "review-notes", format!("The notes {m}")),
        })
        .collect()
}

fn appeal_problems(errors: &[(String, String)]) -> Vec<FieldProblem> {
    errors
        .iter()
        .map(|(f, m)| match f.as_str() {
            "received_at" if m.contains("future") => fp(
                "appeal-received_at",
                "appeal-received_at-day",
                "The date the appeal was received must be today or in the past",
            ),
            "received_at" => fp(
                "appeal-received_at",
                "appeal-received_at-day",
                "The date the appeal was received must be a real date",
            ),
            _ => fp(
                "appeal-grounds",
                "appeal-grounds",
                "Enter the customer's grounds for appealing",
            ),
        })
        .collect()
}

fn decision_problems(errors: &[(String, String)], prefix: &str) -> Vec<FieldProblem> {
    errors
        .iter()
        .map(|(f, _)| match f.as_str() {
            "outcome" => fp(
                &format!("{prefix}-outcome"),
                &format!("{prefix}-outcome"),
                "Select the decision on the appeal",
            ),
            "decided_by" => fp(
                &format!("{prefix}-decided_by"),
                &format!("{prefix}-decided_by"),
                "Enter who decided the appeal",
            ),
            _ => fp(
                &format!("{prefix}-notes"),
                &format!("{prefix}-notes"),
                "The notes must be 4000 characters or fewer",
            ),
        })
        .collect()
}

fn lifecycle_failure(e: ApiError) -> Response {
    match e {
        ApiError::Conflict(detail) => with_status(
            message_page(
                "This could not be saved",
                &format!("{detail}. Nothing was changed."),
            ),
            StatusCode::CONFLICT,
        ),
        ApiError::NotFound(_) => not_found(),
        other => {
            tracing::warn!(error = %other, "console review or appeal failed");
            unavailable()
        }
    }
}

/// An appeal from the page's form, through the API's own operation.
pub async fn appeal(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = pairs(&body);
    if !csrf_ok(&staff, &pairs) {
        return session::csrf_refused();
    }
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let a = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let tz = state.calendar.tz;
    let mut json = serde_json::Map::new();
    let grounds = one(&pairs, "appeal-grounds");
    if !grounds.trim().is_empty() {
        json.insert("grounds".into(), json!(grounds));
    }
    let received = DateParts {
        day: one(&pairs, "appeal-received_at-day").into(),
        month: one(&pairs, "appeal-received_at-month").into(),
        year: one(&pairs, "appeal-received_at-year").into(),
    };
    if !received.is_empty() {
        let text = match received.date() {
            // Today: now; another day: the start of it.
            Some(d) if d == today(&state) => state.clock.now().to_rfc3339(),
            Some(d) => tz
                .from_local_datetime(&d.and_time(NaiveTime::MIN))
                .earliest()
                .map(|t| t.with_timezone(&Utc).to_rfc3339())
                .unwrap_or_else(|| "not a date".into()),
            None => "not a date".into(),
        };
        json.insert("received_at".into(), json!(text));
    }
    match crate::api::lifecycle::record_appeal(&state, &a.id, &Value::Object(json), &staff.name)
        .await
    {
        Ok(_) => Redirect::to(&format!(
            "/console/arrangements/{}?saved=appeal#appeals",
            a.id.as_str()
        ))
        .into_response(),
        Err(e) => match api_errors(&e) {
            Some(errors) => {
                let problems = appeal_problems(&errors);
                detail_page(
                    &state,
                    &staff,
                    &a,
                    Extras {
                        problems,
                        appeal: pairs,
                        ..Default::default()
                    },
                )
                .await
            }
            None => lifecycle_failure(e),
        },
    }
}

/// A decision on an appeal, through the API's own operation (once only).
pub async fn decide(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = pairs(&body);
    if !csrf_ok(&staff, &pairs) {
        return session::csrf_refused();
    }
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let Ok(appeal_id) = AppealId::parse(&id) else {
        return not_found();
    };
    let appeal = match state.store.get_appeal(&appeal_id).await {
        Ok(Some(ap)) => ap,
        Ok(None) => return not_found(),
        Err(_) => return unavailable(),
    };
    let a = match load(&state, appeal.arrangement_id.as_str()).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    // The appeal's place on the page names its fields.
    let index = match state.store.list_appeals(None, Some(&a.id), 200).await {
        Ok(list) => list.iter().position(|x| x.id == appeal.id).unwrap_or(0) + 1,
        Err(_) => return unavailable(),
    };
    let prefix = format!("decision-{index}");
    let mut json = serde_json::Map::new();
    let outcome = one(&pairs, "outcome");
    if !outcome.is_empty() {
        json.insert("outcome".into(), json!(outcome));
    }
    let by = one(&pairs, &format!("{prefix}-decided_by"));
    if !by.trim().is_empty() {
        json.insert("decided_by".into(), json!(by));
    }
    let notes = one(&pairs, &format!("{prefix}-notes"));
    if !notes.trim().is_empty() {
        json.insert("notes".into(), json!(notes));
    }
    match crate::api::lifecycle::decide(&state, &appeal_id, &Value::Object(json), &staff.name).await
    {
        Ok(_) => Redirect::to(&format!(
            "/console/arrangements/{}?saved=decision#appeals",
            a.id.as_str()
        ))
        .into_response(),
        Err(e) => match api_errors(&e) {
            Some(errors) => {
                let problems = decision_problems(&errors, &prefix);
                detail_page(
                    &state,
                    &staff,
                    &a,
                    Extras {
                        problems,
                        decision: Some((appeal.id.as_str().to_owned(), pairs)),
                        ..Default::default()
                    },
                )
                .await
            }
            None => lifecycle_failure(e),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Letters
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize, Default)]
pub struct LetterQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    language: String,
}

fn letter_params(
    q: &LetterQuery,
    a: &Arrangement,
) -> Option<(crate::letters::LetterKind, LanguageSetting)> {
    let kind = crate::letters::LetterKind::parse(&q.kind)?;
    let language = if q.language.is_empty() {
        a.language
    } else {
        q.language.parse().ok()?
    };
    Some((kind, language))
}

/// A letter's blocks with consecutive items as one list.
enum Grouped<'a> {
    Heading(&'a str),
    Para(&'a str),
    List(Vec<&'a str>),
}

fn group_blocks(blocks: &[crate::letters::Block]) -> Vec<Grouped<'_>> {
    use crate::letters::Block;
    let mut out: Vec<Grouped<'_>> = Vec::new();
    for b in blocks {
        match b {
            Block::Heading(h) => out.push(Grouped::Heading(h)),
            Block::Para(p) => out.push(Grouped::Para(p)),
            Block::Item(i) => match out.last_mut() {
                Some(Grouped::List(items)) => items.push(i),
                _ => out.push(Grouped::List(vec![i])),
            },
        }
    }
    out
}

/// `GET …/letter`: a preview of the letter, in the page, with a PDF download.
pub async fn letter_preview(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<LetterQuery>,
) -> Response {
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let a = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some((kind, language)) = letter_params(&q, &a) else {
        return not_found();
    };
    let built = match crate::api::lifecycle::build_letter(&state, &a, kind, Some(language)).await {
        Ok(l) => l,
        Err(ApiError::Conflict(why)) => {
            return with_status(
                message_page("This letter cannot be written yet", &format!("{why}.")),
                StatusCode::CONFLICT,
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "console letter preview failed");
            return unavailable();
        }
    };
    let pdf = format!(
        "/console/arrangements/{}/letter.pdf?kind={}&language={}",
        a.id.as_str(),
        kind.as_str(),
        language.as_str().replace('+', "%2B")
    );
    let body = html! {
        a href={ "/console/arrangements/" (a.id.as_str()) "#letters" } class="govuk-back-link" { "Back to the arrangement" }
        span class="govuk-caption-l" { (a.customer_ref) }
        h1 class="govuk-heading-l" { "Letter preview: " (language_words(language.as_str())) }
        a href=(pdf) class="govuk-button" role="button" draggable="false" download { "Download as PDF" }
        div class="fl-letter" {
            @for line in &built.letterhead { p class="govuk-body fl-letter__head" { (line) } }
            @for section in &built.sections {
                div class="fl-letter__section" lang=(section.language.as_str()) {
                    p class="govuk-body" { (section.date) }
                    @for block in group_blocks(&section.blocks) {
                        @match block {
                            Grouped::Heading(h) => { h2 class="govuk-heading-m" { (h) } }
                            Grouped::Para(p) => {
                                p class="govuk-body" {
                                    @for (i, line) in p.split('\n').enumerate() { @if i > 0 { br; } (line) }
                                }
                            }
                            Grouped::List(items) => {
                                ul class="govuk-list govuk-list--bullet" { @for it in items { li { (it) } } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(
        "Letter preview",
        Some(&staff),
        Nav::Arrangements,
        false,
        body,
    )
}

/// `GET …/letter.pdf`: the letter as a PDF attachment.
pub async fn letter_pdf(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<LetterQuery>,
) -> Response {
    if !staff.is_manager() {
        return forbidden(&staff);
    }
    let a = match load(&state, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some((kind, language)) = letter_params(&q, &a) else {
        return not_found();
    };
    match crate::api::lifecycle::make_letter(
        &state,
        &a.id,
        kind,
        Some(language),
        crate::letters::LetterFormat::Pdf,
    )
    .await
    {
        Ok(file) => (
            [
                (header::CONTENT_TYPE, file.content_type.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", file.filename),
                ),
            ],
            file.body,
        )
            .into_response(),
        Err(ApiError::Conflict(why)) => with_status(
            message_page("This letter cannot be written yet", &format!("{why}.")),
            StatusCode::CONFLICT,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "console letter PDF failed");
            unavailable()
        }
    }
}
