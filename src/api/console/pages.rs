//! The console's pages and form handlers.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::html;
use super::session::{self, Staff};
use crate::console::endcall::{self, EndDetails, EndError, ReviewError};
use crate::console::views::{self, error_message, error_summary, problem_for, FieldProblem, Nav};
use crate::console::words;
use crate::domain::{
    Arrangement, ArrangementId, CallId, HangupResult, Provider, ReviewOutcome, Termination,
    TerminationId, TerminationReason,
};
use crate::state::AppState;
use crate::store::{ReviewStatus, TerminationFilter};

/// `warned_at` may be this far ahead of our clock.
const WARNED_AT_SKEW: chrono::Duration = chrono::Duration::seconds(60);
const MAX_NOTES_CHARS: usize = 4000;

/// A whole console page as a response.
pub fn page(
    title: &str,
    staff: Option<&Staff>,
    nav: Nav,
    has_errors: bool,
    body: Markup,
) -> Response {
    html(views::page(title, staff, nav, has_errors, body))
}

/// A page with just a heading and a paragraph.
pub fn message_page(title: &str, text: &str) -> Response {
    html(views::message_page(title, text))
}

pub fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        message_page(
            "Sorry, there is a problem",
            "The console cannot reach its records just now. Try again in a minute. If you need \
             to end a call now, end it on your phone.",
        ),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        message_page("Page not found", "There is nothing at this address."),
    )
        .into_response()
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        message_page(
            "You cannot see this page",
            "Only managers can see ended calls. Sign in with a manager's access.",
        ),
    )
        .into_response()
}

/// The fields of a urlencoded form (last value wins).
fn form_fields(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or("")
}

fn csrf_ok(staff: &Staff, form: &HashMap<String, String>) -> bool {
    session::same_token(field(form, "csrf_token"), &staff.csrf_token)
}

// ---------------------------------------------------------------------------------------------
// Sign-in and sign-out
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct SignInQuery {
    timed_out: Option<String>,
    signed_out: Option<String>,
}

pub async fn sign_in_form(State(state): State<AppState>, Query(q): Query<SignInQuery>) -> Response {
    let notice = if q.timed_out.is_some() {
        Some("You were signed out because the console was not used for a while. Sign in again.")
    } else if q.signed_out.is_some() {
        Some("You have signed out.")
    } else {
        None
    };
    sign_in_page(&state, notice, &[], StatusCode::OK)
}

pub(crate) fn sign_in_page(
    state: &AppState,
    notice: Option<&str>,
    problems: &[FieldProblem],
    status: StatusCode,
) -> Response {
    let token = session::random_token();
    let problem = problem_for(problems, "token");
    let body = html! {
        div class="govuk-grid-row" {
            div class="govuk-grid-column-two-thirds" {
                (error_summary(problems))
                @if let Some(n) = notice {
                    (views::banner(false, "Important", n, None))
                }
                h1 class="govuk-heading-l" { "Sign in" }
                @if state.config.console.oidc.is_some() {
                    p class="govuk-body" { "Sign in with the account you use for your organisation's other systems." }
                    a href="/console/sign-in/oidc" class="govuk-button govuk-button--start" {
                        "Sign in with your organisation account"
                    }
                    h2 class="govuk-heading-m" { "Or sign in with an access token" }
                }
                form method="post" action="/console/sign-in" novalidate {
                    input type="hidden" name="csrf_token" value=(token);
                    div class={ "govuk-form-group" @if problem.is_some() { " govuk-form-group--error" } } {
                        label class="govuk-label govuk-label--s" for="token" { "Access token" }
                        div class="govuk-hint" id="token-hint" {
                            "The token you were given for this console or for the Fairline API."
                        }
                        (error_message(problem))
                        input class={ "govuk-input govuk-!-width-two-thirds" @if problem.is_some() { " govuk-input--error" } }
                            id="token" name="token" type="password" autocomplete="current-password"
                            spellcheck="false"
                            aria-describedby={ "token-hint" @if problem.is_some() { " token-error" } };
                    }
                    button type="submit" class="govuk-button" { "Sign in" }
                }
            }
        }
    };
    let mut res = page("Sign in", None, Nav::None, !problems.is_empty(), body);
    *res.status_mut() = status;
    res.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(state, session::SIGN_IN_COOKIE, &token, Some(3600)),
    );
    res
}

pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form_fields(&body);
    let cookie = session::cookie_value(&headers, session::SIGN_IN_COOKIE).unwrap_or("");
    if cookie.is_empty() || !session::same_token(field(&form, "csrf_token"), cookie) {
        return session::csrf_refused();
    }
    let token = field(&form, "token").trim();
    let problem = |message: &str| {
        vec![FieldProblem {
            id: "token".into(),
            field: "token".into(),
            message: message.into(),
        }]
    };
    if token.is_empty() {
        return sign_in_page(
            &state,
            None,
            &problem("Enter your access token"),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let Some(principal) = principal_for_token(&state, token).await else {
        tracing::info!("console sign-in refused: unknown token");
        return sign_in_page(
            &state,
            None,
            &problem("The access token is not recognised. Check it and try again"),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    start_session(&state, &principal.name, principal.role).await
}

/// A new session for a person whose identity has been checked: stored, its cookie set, and
/// off to the home page.
pub(crate) async fn start_session(
    state: &AppState,
    name: &str,
    role: crate::config::Role,
) -> Response {
    let now = state.clock.now();
    let id = session::random_token();
    let record = crate::store::ConsoleSession {
        id_hash: session::hash_id(&id),
        csrf_token: session::random_token(),
        name: name.to_owned(),
        role,
        created_at: now,
        last_seen_at: now,
    };
    if let Err(e) = state.store.create_session(&record).await {
        tracing::warn!(error = %e, "could not store a console session");
        return unavailable();
    }
    tracing::info!(name = %name, role = role.as_str(), "console sign-in");
    let mut res = Redirect::to("/console/").into_response();
    let lifetime = crate::console::config::ABSOLUTE_LIFETIME.as_secs() as i64;
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(state, session::SESSION_COOKIE, &id, Some(lifetime)),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(state, session::SIGN_IN_COOKIE, "", Some(0)),
    );
    res
}

/// The API's own bearer-token check, so the console accepts exactly the API's tokens.
async fn principal_for_token(
    state: &AppState,
    token: &str,
) -> Option<crate::api::extract::Principal> {
    let req = axum::http::Request::builder()
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .ok()?;
    let (mut parts, ()) = req.into_parts();
    crate::api::extract::Principal::from_request_parts(&mut parts, state)
        .await
        .ok()
}

pub async fn sign_out(State(state): State<AppState>, staff: Staff, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !csrf_ok(&staff, &form) {
        return session::csrf_refused();
    }
    if let Err(e) = state.store.delete_session(&staff.id_hash).await {
        tracing::warn!(error = %e, "could not delete a console session at sign-out");
        return unavailable();
    }
    let mut res = Redirect::to("/console/sign-in?signed_out=1").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&state, session::SESSION_COOKIE, "", Some(0)),
    );
    res
}

// ---------------------------------------------------------------------------------------------
// Home
// ---------------------------------------------------------------------------------------------

/// The most rows a home-page count reads; a count that reaches it is shown as "1000+".
const HOME_COUNT_CAP: usize = 1000;

pub async fn home(State(state): State<AppState>, staff: Staff) -> Response {
    let now = state.clock.now();
    let live = match state
        .store
        .list_live_calls(now - crate::console::live::MAX_AGE)
        .await
    {
        Ok(l) => l.len(),
        Err(_) => return unavailable(),
    };
    let pending = if staff.is_manager() {
        match state
            .store
            .list_terminations(&TerminationFilter {
                status: Some(ReviewStatus::Pending),
                since: None,
                limit: HOME_COUNT_CAP as u32,
                before: None,
            })
            .await
        {
            Ok(t) => Some(t.len()),
            Err(_) => return unavailable(),
        }
    } else {
        None
    };
    let lifecycle = if staff.is_manager() {
        match lifecycle_counts(&state).await {
            Ok(c) => Some(c),
            Err(_) => return unavailable(),
        }
    } else {
        None
    };
    let count = |n: usize, href: &str, one: &str, many: &str| {
        html! {
            li class="fl-count" {
                a class="govuk-link govuk-link--no-visited-state" href=(href) {
                    // The lists behind the counts stop at HOME_COUNT_CAP rows.
                    span class="fl-count__number" { @if n >= HOME_COUNT_CAP { (HOME_COUNT_CAP) "+" } @else { (n) } }
                    span class="fl-count__label" { @if n == 1 { (one) } @else { (many) } }
                }
            }
        }
    };
    let body = html! {
        h1 class="govuk-heading-l" { "What needs doing" }
        ul class="govuk-list fl-counts" {
            @if let Some(p) = pending {
                (count(p, "/console/terminations", "ended call awaiting review", "ended calls awaiting review"))
            }
            @if let Some((due, overdue, appeals)) = lifecycle {
                (count(overdue, "/console/arrangements?review=overdue", "review overdue", "reviews overdue"))
                (count(due, "/console/arrangements?review=due", "review due in the next 14 days", "reviews due in the next 14 days"))
                (count(appeals, "/console/arrangements?appeals=open", "open appeal", "open appeals"))
            }
            li class="fl-count" {
                a class="govuk-link govuk-link--no-visited-state" href="/console/calls" {
                    span class="fl-count__number" { (live) }
                    span class="fl-count__label" { @if live == 1 { "live call" } @else { "live calls" } }
                }
            }
        }
        p class="govuk-body" { "To end an abusive call, go to " a class="govuk-link" href="/console/calls" { "Live calls" } " and choose End call next to it." }
    };
    page("Home", Some(&staff), Nav::Home, false, body)
}

/// Reviews due in the next 14 days, reviews overdue (active arrangements) and open appeals.
async fn lifecycle_counts(
    state: &AppState,
) -> Result<(usize, usize, usize), crate::store::StoreError> {
    let now = state.clock.now();
    let today = now.with_timezone(&state.calendar.tz).date_naive();
    let active = |from, before| crate::store::ArrangementFilter {
        status: Some(crate::domain::ArrangementStatus::Active),
        review_due_from: from,
        review_due_before: Some(before),
        now: Some(now),
        limit: HOME_COUNT_CAP as u32,
        ..Default::default()
    };
    let due = state
        .store
        .list_arrangements(&active(Some(today), today + chrono::Duration::days(15)))
        .await?
        .len();
    let overdue = state
        .store
        .list_arrangements(&active(None, today))
        .await?
        .len();
    let appeals = state
        .store
        .list_appeals(
            Some(crate::store::lifecycle::AppealStatus::Open),
            None,
            HOME_COUNT_CAP as u32,
        )
        .await?
        .len();
    Ok((due, overdue, appeals))
}

// ---------------------------------------------------------------------------------------------
// Live calls
// ---------------------------------------------------------------------------------------------

async fn arrangements_by_id(
    state: &AppState,
    ids: impl Iterator<Item = ArrangementId>,
) -> HashMap<ArrangementId, Arrangement> {
    let mut out = HashMap::new();
    for id in ids {
        if out.contains_key(&id) {
            continue;
        }
        if let Ok(Some(a)) = state.store.get_arrangement(&id).await {
            out.insert(id, a);
        }
    }
    out
}

pub async fn calls(State(state): State<AppState>, staff: Staff) -> Response {
    let now = state.clock.now();
    let tz = state.config.organisation.timezone;
    let rows = match state
        .store
        .list_live_calls(now - crate::console::live::MAX_AGE)
        .await
    {
        Ok(r) => r,
        Err(_) => return unavailable(),
    };
    let arrangements =
        arrangements_by_id(&state, rows.iter().filter_map(|c| c.arrangement_id.clone())).await;
    let body = html! {
        h1 class="govuk-heading-l" { "Live calls" }
        p class="govuk-body" {
            "Calls in progress now. This list updates itself every 5 seconds. "
            a class="govuk-link" href="/console/calls" { "Refresh the list" }
        }
        div id="live-calls" data-refresh="5" {
            p class="govuk-body-s fl-updated" { "Updated at " (words::local_time(tz, now)) }
            @if rows.is_empty() {
                div class="govuk-inset-text" { "There are no calls in progress." }
            } @else {
                table class="govuk-table" {
                    caption class="govuk-table__caption govuk-table__caption--m govuk-visually-hidden" { "Calls in progress" }
                    thead class="govuk-table__head" {
                        tr class="govuk-table__row" {
                            th scope="col" class="govuk-table__header" { "Started" }
                            th scope="col" class="govuk-table__header" { "Caller" }
                            th scope="col" class="govuk-table__header" { "What happened" }
                            th scope="col" class="govuk-table__header" { "Arrangement" }
                            th scope="col" class="govuk-table__header" { span class="govuk-visually-hidden" { "Action" } }
                        }
                    }
                    tbody class="govuk-table__body" {
                        @for c in &rows {
                            @let number = c.caller.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_else(|| "Number withheld".into());
                            tr class="govuk-table__row" {
                                td class="govuk-table__cell" { (words::local(tz, c.started_at)) }
                                td class="govuk-table__cell fl-nowrap" { (number) }
                                td class="govuk-table__cell" { (words::decision(&state.config, c.outcome, c.reason, c.route_to.as_ref())) }
                                td class="govuk-table__cell" {
                                    @match c.arrangement_id.as_ref().and_then(|id| arrangements.get(id)) {
                                        Some(a) => {
                                            span class="govuk-!-font-weight-bold" { (a.customer_ref) } br;
                                            (words::arrangement_rules(&state.config, a))
                                        }
                                        None => { "None" }
                                    }
                                }
                                td class="govuk-table__cell fl-nowrap" {
                                    a class="govuk-link" href={ "/console/calls/" (c.provider.as_str()) "/" (c.call_id.as_str()) "/end" } {
                                        "End call" span class="govuk-visually-hidden" { " from " (number) " started " (words::local(tz, c.started_at)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Live calls", Some(&staff), Nav::Calls, false, body)
}

fn parse_call(provider: &str, call_id: &str) -> Option<(Provider, CallId)> {
    let p: Provider = provider.parse().ok()?;
    let c = CallId::parse(call_id).ok()?;
    Some((p, c))
}

/// What the agent typed into the end-call form (kept to show it again).
#[derive(Default)]
struct EndForm {
    reason: String,
    warning_given: String,
    warned_at: String,
    notes: String,
}

pub async fn end_form(
    State(state): State<AppState>,
    staff: Staff,
    Path((provider, call_id)): Path<(String, String)>,
) -> Response {
    let Some((provider, call_id)) = parse_call(&provider, &call_id) else {
        return not_found();
    };
    end_page(&state, &staff, provider, &call_id, &EndForm::default(), &[]).await
}

async fn end_page(
    state: &AppState,
    staff: &Staff,
    provider: Provider,
    call_id: &CallId,
    form: &EndForm,
    problems: &[FieldProblem],
) -> Response {
    let tz = state.config.organisation.timezone;
    let live = state
        .store
        .get_live_call(provider, call_id)
        .await
        .ok()
        .flatten();
    let arrangement = match live.as_ref().and_then(|c| c.arrangement_id.clone()) {
        Some(id) => state.store.get_arrangement(&id).await.ok().flatten(),
        None => None,
    };
    let action = format!(
        "/console/calls/{}/{}/end",
        provider.as_str(),
        call_id.as_str()
    );
    let body = html! {
        div class="govuk-grid-row" {
            div class="govuk-grid-column-two-thirds" {
                a href="/console/calls" class="govuk-back-link" { "Back to live calls" }
                (error_summary(problems))
                h1 class="govuk-heading-l" { "End call" }
                @match &live {
                    Some(c) => {
                        dl class="govuk-summary-list" {
                            (views::summary_row("Caller", html! { (c.caller.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_else(|| "Number withheld".into())) }))
                            (views::summary_row("Started", html! { (words::local(tz, c.started_at)) }))
                            (views::summary_row("What happened", html! { (words::decision(&state.config, c.outcome, c.reason, c.route_to.as_ref())) }))
                            @if let Some(a) = &arrangement {
                                (views::summary_row("Arrangement", html! { (a.customer_ref) ": " (words::arrangement_rules(&state.config, a)) }))
                            }
                        }
                    }
                    None => {
                        div class="govuk-inset-text" { "This call is not listed as in progress. You can still record that you ended it." }
                    }
                }
                (end_call_form(staff, &action, form, problems))
            }
        }
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut res = page(
        "End call",
        Some(staff),
        Nav::Calls,
        !problems.is_empty(),
        body,
    );
    *res.status_mut() = status;
    res
}

/// The end-call form: reason, warning, when, notes.
fn end_call_form(staff: &Staff, action: &str, form: &EndForm, problems: &[FieldProblem]) -> Markup {
    let reason_p = problem_for(problems, "reason");
    let warn_p = problem_for(problems, "warning_given");
    let when_p = problem_for(problems, "warned_at");
    let notes_p = problem_for(problems, "notes");
    html! {
                form method="post" action=(action) novalidate {
                    (views::csrf(staff))
                    div class={ "govuk-form-group" @if reason_p.is_some() { " govuk-form-group--error" } } {
                        fieldset class="govuk-fieldset" aria-describedby=[reason_p.map(|_| "reason-error")] {
                            legend class="govuk-fieldset__legend govuk-fieldset__legend--m" {
                                h2 class="govuk-fieldset__heading" { "Why did you end the call?" }
                            }
                            (error_message(reason_p))
                            div class="govuk-radios" data-module="govuk-radios" {
                                @for (i, r) in TerminationReason::ALL.iter().enumerate() {
                                    @let id = if i == 0 { "reason".to_owned() } else { format!("reason-{}", i + 1) };
                                    @let (label, hint) = words::termination_reason(*r);
                                    div class="govuk-radios__item" {
                                        input class="govuk-radios__input" id=(id) name="reason" type="radio" value=(r.as_str())
                                            checked[form.reason == r.as_str()]
                                            aria-describedby=[hint.map(|_| format!("{id}-hint"))];
                                        label class="govuk-label govuk-radios__label" for=(id) { (label) }
                                        @if let Some(h) = hint {
                                            div id={ (id) "-hint" } class="govuk-hint govuk-radios__hint" { (h) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div class={ "govuk-form-group" @if warn_p.is_some() { " govuk-form-group--error" } } {
                        fieldset class="govuk-fieldset" aria-describedby=[warn_p.map(|_| "warning_given-error")] {
                            legend class="govuk-fieldset__legend govuk-fieldset__legend--m" {
                                h2 class="govuk-fieldset__heading" { "I warned the caller" }
                            }
                            (error_message(warn_p))
                            div class="govuk-radios govuk-radios--inline" data-module="govuk-radios" {
                                div class="govuk-radios__item" {
                                    input class="govuk-radios__input" id="warning_given" name="warning_given" type="radio" value="yes" checked[form.warning_given == "yes"];
                                    label class="govuk-label govuk-radios__label" for="warning_given" { "Yes" }
                                }
                                div class="govuk-radios__item" {
                                    input class="govuk-radios__input" id="warning_given-2" name="warning_given" type="radio" value="no" checked[form.warning_given == "no"];
                                    label class="govuk-label govuk-radios__label" for="warning_given-2" { "No" }
                                }
                            }
                        }
                    }
                    div class={ "govuk-form-group" @if when_p.is_some() { " govuk-form-group--error" } } {
                        label class="govuk-label govuk-label--s" for="warned_at" { "When did you warn them? (optional)" }
                        div class="govuk-hint" id="warned_at-hint" { "The time today, for example 14:05. Leave it empty if you did not warn them." }
                        (error_message(when_p))
                        input class={ "govuk-input govuk-input--width-5" @if when_p.is_some() { " govuk-input--error" } }
                            id="warned_at" name="warned_at" type="text" inputmode="numeric" spellcheck="false"
                            value=(form.warned_at)
                            aria-describedby={ "warned_at-hint" @if when_p.is_some() { " warned_at-error" } };
                    }
                    div class={ "govuk-form-group" @if notes_p.is_some() { " govuk-form-group--error" } } {
                        label class="govuk-label govuk-label--s" for="notes" { "Notes (optional)" }
                        div class="govuk-hint" id="notes-hint" { "What the caller said or did. Needed if you chose ‘Something else’." }
                        (error_message(notes_p))
                        textarea class={ "govuk-textarea" @if notes_p.is_some() { " govuk-textarea--error" } }
                            id="notes" name="notes" rows="4"
                            aria-describedby={ "notes-hint" @if notes_p.is_some() { " notes-error" } } { (form.notes) }
                    }
                    button type="submit" class="govuk-button govuk-button--warning" { "End call" }
                }
    }
}

fn fp(field: &str, id: &str, message: &str) -> FieldProblem {
    FieldProblem {
        id: id.into(),
        field: field.into(),
        message: message.into(),
    }
}

/// Check the end-call form in the agent's words; on success, the §9 request body.
fn check_end_form(
    form: &EndForm,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<EndDetails, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let reason = TerminationReason::parse(&form.reason);
    if reason.is_none() {
        problems.push(fp("reason", "reason", "Select why you ended the call"));
    }
    let warned = match form.warning_given.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => {
            problems.push(fp(
                "warning_given",
                "warning_given",
                "Select yes if you warned the caller",
            ));
            None
        }
    };
    if warned == Some(false) && reason.is_some_and(|r| r != TerminationReason::ThreatOfViolence) {
        problems.push(fp(
            "warning_given",
            "warning_given",
            "Warn the caller before ending the call, unless they threatened violence",
        ));
    }
    let warned_at = check_warned_at(form.warned_at.trim(), warned, now, tz, &mut problems);
    let notes = form.notes.trim();
    if notes.chars().count() > MAX_NOTES_CHARS {
        problems.push(fp(
            "notes",
            "notes",
            "Notes must be 4000 characters or fewer",
        ));
    } else if notes.is_empty() && reason == Some(TerminationReason::Other) {
        problems.push(fp(
            "notes",
            "notes",
            "Say what happened, because you chose ‘Something else’",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    match (reason, warned) {
        (Some(reason), Some(warning_given)) => Ok(EndDetails {
            reason,
            warning_given,
            warned_at,
            notes: (!notes.is_empty()).then(|| notes.to_owned()),
        }),
        _ => Err(problems),
    }
}

/// The optional "when did you warn them" time: only with a warning, a real time, not ahead.
fn check_warned_at(
    raw_time: &str,
    warned: Option<bool>,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
    problems: &mut Vec<FieldProblem>,
) -> Option<DateTime<Utc>> {
    let mut warned_at = None;
    if !raw_time.is_empty() {
        if warned == Some(false) {
            problems.push(fp(
                "warned_at",
                "warned_at",
                "Leave the time empty if you did not warn the caller",
            ));
        } else {
            match parse_local_time_today(raw_time, now, tz) {
                Some(t) if t > now + WARNED_AT_SKEW => problems.push(fp(
                    "warned_at",
                    "warned_at",
                    "The time you warned the caller must be in the past",
                )),
                Some(t) => warned_at = Some(t),
                None => problems.push(fp(
                    "warned_at",
                    "warned_at",
                    "Enter the time you warned the caller like 14:05",
                )),
            }
        }
    }
    warned_at
}

/// "14:05" (or "1405", "14.05") today in local time, as an instant.
fn parse_local_time_today(
    raw: &str,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Option<DateTime<Utc>> {
    let cleaned = raw.replace('.', ":");
    let time = NaiveTime::parse_from_str(&cleaned, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(&cleaned, "%H%M"))
        .ok()?;
    let today = now.with_timezone(&tz).date_naive();
    tz.from_local_datetime(&today.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

pub async fn end_submit(
    State(state): State<AppState>,
    staff: Staff,
    Path((provider, call_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if !csrf_ok(&staff, &fields) {
        return session::csrf_refused();
    }
    let Some((provider, call_id)) = parse_call(&provider, &call_id) else {
        return not_found();
    };
    let form = EndForm {
        reason: field(&fields, "reason").to_owned(),
        warning_given: field(&fields, "warning_given").to_owned(),
        warned_at: field(&fields, "warned_at").to_owned(),
        notes: field(&fields, "notes").to_owned(),
    };
    let now = state.clock.now();
    let body = match check_end_form(&form, now, state.config.organisation.timezone) {
        Ok(b) => b,
        Err(problems) => {
            return end_page(&state, &staff, provider, &call_id, &form, &problems).await;
        }
    };
    match endcall::end_call(&state, &staff, provider, call_id.clone(), body).await {
        Ok(ended) => end_result_page(&staff, &ended),
        Err(EndError::Invalid(violations)) => {
            let problems: Vec<FieldProblem> = violations
                .into_iter()
                .map(|v| fp(v.field, v.field, &v.message))
                .collect();
            end_page(&state, &staff, provider, &call_id, &form, &problems).await
        }
        Err(EndError::Busy) => outcome_page(
            &staff,
            false,
            "Someone is ending this call right now",
            "Wait a few seconds and look at Live calls again. If the caller is still on the line, end it on your phone.",
            StatusCode::CONFLICT,
        ),
        Err(EndError::Failed(e)) => {
            tracing::warn!(error = %e, "console end call failed");
            outcome_page(
                &staff,
                false,
                "The call could not be ended",
                "End it on your phone now. Then tell a manager, because it may not have been recorded.",
                StatusCode::BAD_GATEWAY,
            )
        }
    }
}

fn end_result_page(staff: &Staff, ended: &endcall::Ended) -> Response {
    let recorded = "It has been recorded for a manager to review.";
    match ended.hangup_result {
        "completed" => outcome_page(staff, true, "Call ended", recorded, StatusCode::OK),
        "already_ended" => outcome_page(
            staff,
            true,
            "The call had already ended",
            recorded,
            StatusCode::OK,
        ),
        _ => outcome_page(
            staff,
            false,
            "The call could not be ended: end it on your phone",
            "The phone system did not answer. End the call on your phone now. It has been recorded for a manager to review.",
            StatusCode::BAD_GATEWAY,
        ),
    }
}

fn outcome_page(
    staff: &Staff,
    success: bool,
    heading: &str,
    text: &str,
    status: StatusCode,
) -> Response {
    let body = html! {
        div class="govuk-grid-row" {
            div class="govuk-grid-column-two-thirds" {
                (views::banner(success, if success { "Success" } else { "Important" }, heading, Some(text)))
                h1 class="govuk-heading-l" { "End call" }
                @if !success {
                    div class="govuk-warning-text" {
                        span class="govuk-warning-text__icon" aria-hidden="true" { "!" }
                        strong class="govuk-warning-text__text" {
                            span class="govuk-visually-hidden" { "Warning" }
                            (heading)
                        }
                    }
                }
                p class="govuk-body" { a class="govuk-link" href="/console/calls" { "Back to live calls" } }
            }
        }
    };
    let mut res = page("End call", Some(staff), Nav::Calls, false, body);
    *res.status_mut() = status;
    res
}

// ---------------------------------------------------------------------------------------------
// Ended calls (managers)
// ---------------------------------------------------------------------------------------------

fn hangup_words(t: &Termination) -> &'static str {
    match t.hangup {
        Some(HangupResult::Completed) => "Ended by Fairline",
        Some(HangupResult::AlreadyEnded) => "Had already ended",
        Some(HangupResult::Failed) => "Could not be ended by Fairline",
        None => "Being ended",
    }
}

fn status_tag(t: &Termination) -> Markup {
    html! {
        @match &t.review {
            Some(r) => strong class="govuk-tag govuk-tag--green" { "Reviewed: " (words::review_outcome(r.outcome)) },
            None => strong class="govuk-tag govuk-tag--yellow" { "Awaiting review" },
        }
    }
}

pub async fn terminations(State(state): State<AppState>, staff: Staff) -> Response {
    if !staff.is_manager() {
        return forbidden();
    }
    let tz = state.config.organisation.timezone;
    let list = |status| TerminationFilter {
        status: Some(status),
        since: None,
        limit: 200,
        before: None,
    };
    let (pending, reviewed) = match (
        state
            .store
            .list_terminations(&list(ReviewStatus::Pending))
            .await,
        state
            .store
            .list_terminations(&list(ReviewStatus::Reviewed))
            .await,
    ) {
        (Ok(p), Ok(r)) => (p, r),
        _ => return unavailable(),
    };
    let table = |caption: &str, rows: &[Termination]| {
        html! {
            table class="govuk-table" {
                caption class="govuk-table__caption govuk-table__caption--m" { (caption) }
                thead class="govuk-table__head" {
                    tr class="govuk-table__row" {
                        th scope="col" class="govuk-table__header" { "Ended" }
                        th scope="col" class="govuk-table__header" { "Caller" }
                        th scope="col" class="govuk-table__header" { "Reason" }
                        th scope="col" class="govuk-table__header" { "Ended by" }
                        th scope="col" class="govuk-table__header" { "Status" }
                    }
                }
                tbody class="govuk-table__body" {
                    @for t in rows {
                        tr class="govuk-table__row" {
                            td class="govuk-table__cell" {
                                a class="govuk-link" href={ "/console/terminations/" (t.id.as_str()) } {
                                    (words::local(tz, t.terminated_at))
                                    span class="govuk-visually-hidden" { ": view this ended call" }
                                }
                            }
                            td class="govuk-table__cell fl-nowrap" { (t.caller.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_else(|| "Not known".into())) }
                            td class="govuk-table__cell" {
                                (words::termination_reason(t.reason).0)
                                @if t.reason.police_report_required() {
                                    br; strong class="govuk-tag govuk-tag--red" { "Police report needed" }
                                }
                            }
                            td class="govuk-table__cell" { (t.agent) }
                            td class="govuk-table__cell" { (status_tag(t)) }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        h1 class="govuk-heading-l" { "Ended calls" }
        @if pending.is_empty() {
            h2 class="govuk-heading-m" { "Awaiting review" }
            div class="govuk-inset-text" { "No ended calls are awaiting review." }
        } @else {
            (table("Awaiting review", &pending))
        }
        @if !reviewed.is_empty() {
            (table("Reviewed", &reviewed))
        }
    };
    page("Ended calls", Some(&staff), Nav::Terminations, false, body)
}

#[allow(clippy::too_many_arguments)]
async fn termination_page(
    state: &AppState,
    staff: &Staff,
    id: &str,
    outcome: &str,
    notes: &str,
    problems: &[FieldProblem],
    notice: Option<&str>,
) -> Response {
    let Ok(tid) = TerminationId::parse(id) else {
        return not_found();
    };
    let t = match state.store.get_termination(&tid).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found(),
        Err(_) => return unavailable(),
    };
    let arrangement = match &t.arrangement_id {
        Some(a) => state.store.get_arrangement(a).await.ok().flatten(),
        None => None,
    };
    let tz = state.config.organisation.timezone;
    let body = html! {
        div class="govuk-grid-row" {
            div class="govuk-grid-column-two-thirds" {
                a href="/console/terminations" class="govuk-back-link" { "Back to ended calls" }
                (error_summary(problems))
                @if let Some(n) = notice {
                    (views::banner(true, "Success", n, None))
                }
                span class="govuk-caption-l" { (words::local(tz, t.terminated_at)) }
                h1 class="govuk-heading-l" { "Ended call" }
                @if t.reason.police_report_required() {
                    div class="govuk-warning-text" {
                        span class="govuk-warning-text__icon" aria-hidden="true" { "!" }
                        strong class="govuk-warning-text__text" {
                            span class="govuk-visually-hidden" { "Warning" }
                            "Police report needed: the caller threatened violence."
                        }
                    }
                }
                (termination_summary(state, &t, arrangement.as_ref()))
                @if t.review.is_none() { (termination_review_form(staff, &t, outcome, notes, problems)) }
            }
        }
    };
    let mut res = page(
        "Ended call",
        Some(staff),
        Nav::Terminations,
        !problems.is_empty(),
        body,
    );
    if !problems.is_empty() {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    res
}

/// Everything §9 records about an ended call, and its review.
fn termination_summary(
    state: &AppState,
    t: &Termination,
    arrangement: Option<&crate::domain::Arrangement>,
) -> Markup {
    let tz = state.config.organisation.timezone;
    let yes_no = |b: bool| if b { "Yes" } else { "No" };
    html! {
                dl class="govuk-summary-list" {
                    (views::summary_row("Caller", html! { (t.caller.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_else(|| "Not known".into())) }))
                    (views::summary_row("Reason", html! { (words::termination_reason(t.reason).0) }))
                    (views::summary_row("Caller warned", html! { (yes_no(t.warning_given)) }))
                    (views::summary_row("Warned at", html! { (t.warned_at.map(|w| words::local(tz, w)).unwrap_or_else(|| "Not given".into())) }))
                    (views::summary_row("Notes", html! { (t.notes.clone().unwrap_or_else(|| "None".into())) }))
                    (views::summary_row("Ended by", html! { (t.agent) }))
                    (views::summary_row("Ended at", html! { (words::local(tz, t.terminated_at)) }))
                    (views::summary_row("Hang-up", html! { (hangup_words(t)) @if let Some(d) = &t.hangup_detail { " (" (d) ")" } }))
                    (views::summary_row("Police report needed", html! { (yes_no(t.reason.police_report_required())) }))
                    (views::summary_row("Arrangement", html! {
                        @match (arrangement, &t.customer_ref) {
                            (Some(a), _) => { (a.customer_ref) ": " (words::arrangement_rules(&state.config, a)) }
                            (None, Some(r)) => { (r) }
                            (None, None) => { "None" }
                        }
                    }))
                    (views::summary_row("Phone platform", html! { (t.provider.as_str()) ", call " (t.call_id.as_str()) }))
                    (views::summary_row("Record", html! { (t.id.as_str()) }))
                    (views::summary_row("Review", status_tag(t)))
                    @if let Some(r) = &t.review {
                        (views::summary_row("Reviewed by", html! { (r.reviewer) ", " (words::local(tz, r.reviewed_at)) }))
                        (views::summary_row("Review notes", html! { (r.notes.clone().unwrap_or_else(|| "None".into())) }))
                    }
                }
    }
}

/// The manager's review form for an ended call.
fn termination_review_form(
    staff: &Staff,
    t: &Termination,
    outcome: &str,
    notes: &str,
    problems: &[FieldProblem],
) -> Markup {
    let outcome_p = problem_for(problems, "outcome");
    let notes_p = problem_for(problems, "notes");
    html! {
                    form method="post" action={ "/console/terminations/" (t.id.as_str()) "/review" } novalidate {
                        (views::csrf(staff))
                        div class={ "govuk-form-group" @if outcome_p.is_some() { " govuk-form-group--error" } } {
                            fieldset class="govuk-fieldset" aria-describedby=[outcome_p.map(|_| "outcome-error")] {
                                legend class="govuk-fieldset__legend govuk-fieldset__legend--m" {
                                    h2 class="govuk-fieldset__heading" { "What happens next?" }
                                }
                                (error_message(outcome_p))
                                div class="govuk-radios" data-module="govuk-radios" {
                                    @for (i, o) in ReviewOutcome::ALL.iter().enumerate() {
                                        @let rid = if i == 0 { "outcome".to_owned() } else { format!("outcome-{}", i + 1) };
                                        div class="govuk-radios__item" {
                                            input class="govuk-radios__input" id=(rid) name="outcome" type="radio" value=(o.as_str()) checked[outcome == o.as_str()];
                                            label class="govuk-label govuk-radios__label" for=(rid) { (words::review_outcome(*o)) }
                                        }
                                    }
                                }
                            }
                        }
                        div class={ "govuk-form-group" @if notes_p.is_some() { " govuk-form-group--error" } } {
                            label class="govuk-label govuk-label--s" for="notes" { "Review notes (optional)" }
                            (error_message(notes_p))
                            textarea class={ "govuk-textarea" @if notes_p.is_some() { " govuk-textarea--error" } } id="notes" name="notes" rows="4"
                                aria-describedby=[notes_p.map(|_| "notes-error")] { (notes) }
                        }
                        button type="submit" class="govuk-button" { "Save review" }
                    }
    }
}

pub async fn review_submit(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if !csrf_ok(&staff, &fields) {
        return session::csrf_refused();
    }
    if !staff.is_manager() {
        return forbidden();
    }
    let outcome = field(&fields, "outcome").to_owned();
    let notes = field(&fields, "notes").to_owned();
    let mut problems = Vec::new();
    if ReviewOutcome::parse(&outcome).is_none() {
        problems.push(fp("outcome", "outcome", "Select what happens next"));
    }
    if notes.trim().chars().count() > MAX_NOTES_CHARS {
        problems.push(fp(
            "notes",
            "notes",
            "Notes must be 4000 characters or fewer",
        ));
    }
    if !problems.is_empty() {
        return termination_page(&state, &staff, &id, &outcome, &notes, &problems, None).await;
    }
    let Ok(tid) = TerminationId::parse(&id) else {
        return not_found();
    };
    let (Some(o), trimmed) = (ReviewOutcome::parse(&outcome), notes.trim()) else {
        return not_found();
    };
    let notes_given = (!trimmed.is_empty()).then(|| trimmed.to_owned());
    match endcall::review(&state, &staff, &tid, o, notes_given).await {
        Ok(()) => Redirect::to(&format!("/console/terminations/{id}?reviewed=1")).into_response(),
        Err(ReviewError::AlreadyReviewed) => {
            termination_page(
                &state,
                &staff,
                &id,
                "",
                "",
                &[],
                Some("This call had already been reviewed."),
            )
            .await
        }
        Err(ReviewError::NotFound) => not_found(),
        Err(ReviewError::Failed(e)) => {
            tracing::warn!(error = %e, "console review failed");
            unavailable()
        }
    }
}

#[derive(Deserialize)]
pub struct DetailQuery {
    reviewed: Option<String>,
}

pub async fn termination_detail(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    if !staff.is_manager() {
        return forbidden();
    }
    let notice = q.reviewed.as_ref().map(|_| "Review saved");
    termination_page(&state, &staff, &id, "", "", &[], notice).await
}

// ---------------------------------------------------------------------------------------------
// Assets
// ---------------------------------------------------------------------------------------------

const GOVUK_CSS: &str = include_str!("../../../assets/govuk/govuk-frontend.min.css");
const CONSOLE_CSS: &str = include_str!("../../../assets/console.css");
const CONSOLE_JS: &str = include_str!("../../../assets/console.js");

pub async fn asset(Path(name): Path<String>) -> Response {
    let (kind, body) = match name.as_str() {
        "govuk-frontend.min.css" => ("text/css; charset=utf-8", GOVUK_CSS),
        "console.css" => ("text/css; charset=utf-8", CONSOLE_CSS),
        "console.js" => ("text/javascript; charset=utf-8", CONSOLE_JS),
        _ => return not_found(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

pub async fn fallback() -> Response {
    not_found()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        // A summer instant: London is UTC+1.
        "2026-07-14T13:30:00Z".parse().unwrap()
    }

    fn form(reason: &str, warned: &str, at: &str, notes: &str) -> EndForm {
        EndForm {
            reason: reason.into(),
            warning_given: warned.into(),
            warned_at: at.into(),
            notes: notes.into(),
        }
    }

    fn fields(r: Result<EndDetails, Vec<FieldProblem>>) -> Vec<String> {
        r.err().unwrap().into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn a_local_time_today_becomes_an_instant() {
        let tz = chrono_tz::Europe::London;
        let b = check_end_form(&form("abusive", "yes", "14:25", ""), now(), tz).unwrap();
        assert_eq!(
            b.warned_at,
            Some("2026-07-14T13:25:00Z".parse::<DateTime<Utc>>().unwrap())
        );
        assert!(b.warning_given);
    }

    #[test]
    fn every_problem_is_reported_in_plain_words() {
        let tz = chrono_tz::Europe::London;
        assert_eq!(
            fields(check_end_form(&form("", "", "", ""), now(), tz)),
            ["reason", "warning_given"]
        );
        assert_eq!(
            fields(check_end_form(&form("swearing", "no", "", ""), now(), tz)),
            ["warning_given"]
        );
        assert!(check_end_form(&form("threat_of_violence", "no", "", ""), now(), tz).is_ok());
        assert_eq!(
            fields(check_end_form(
                &form("other", "yes", "15:00", " "),
                now(),
                tz
            )),
            ["warned_at", "notes"]
        );
        assert_eq!(
            fields(check_end_form(
                &form("abusive", "yes", "half past", ""),
                now(),
                tz
            )),
            ["warned_at"]
        );
    }
}
