//! The page frame and the GOV.UK Design System patterns the console uses, as `maud` markup
//! (escaped by construction). No inline script or style: the CSP forbids both.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::session::Staff;

/// Which item of the navigation is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Home,
    Calls,
    Terminations,
    Arrangements,
    None,
}

/// One field's problem, for the error summary and the field itself.
#[derive(Clone, Debug)]
pub struct FieldProblem {
    /// The id of the input the summary links to.
    pub id: String,
    /// The form field's name.
    pub field: String,
    pub message: String,
}

pub fn problem_for<'a>(problems: &'a [FieldProblem], field: &str) -> Option<&'a FieldProblem> {
    problems.iter().find(|p| p.field == field)
}

/// The whole page: skip link, header, service navigation, main.
pub fn page(
    title: &str,
    staff: Option<&Staff>,
    nav: Nav,
    has_errors: bool,
    body: Markup,
) -> Markup {
    let full_title = if has_errors {
        format!("Error: {title} – Fairline staff console")
    } else {
        format!("{title} – Fairline staff console")
    };
    html! {
        (DOCTYPE)
        html lang="en" class="govuk-template govuk-template--rebranded" {
            head {
                meta charset="utf-8";
                title { (full_title) }
                meta name="viewport" content="width=device-width, initial-scale=1";
                link rel="stylesheet" href="/console/assets/govuk-frontend.min.css";
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body class="govuk-template__body" {
                a href="#main-content" class="govuk-skip-link" { "Skip to main content" }
                header class="govuk-header" {
                    div class="govuk-header__container govuk-width-container" {
                        div class="govuk-header__logo" {
                            a href="/console/" class="govuk-header__homepage-link" {
                                span class="govuk-header__product-name" { "Fairline" }
                            }
                        }
                    }
                }
                section class="govuk-service-navigation" aria-label="Service information" {
                    div class="govuk-width-container" {
                        div class="govuk-service-navigation__container" {
                            span class="govuk-service-navigation__service-name" {
                                a href="/console/" class="govuk-service-navigation__link" { "Staff console" }
                            }
                            @if let Some(staff) = staff {
                                nav aria-label="Menu" class="govuk-service-navigation__wrapper" {
                                    ul class="govuk-service-navigation__list" id="navigation" {
                                        (nav_item("/console/", "Home", nav == Nav::Home))
                                        (nav_item("/console/calls", "Live calls", nav == Nav::Calls))
                                        @if staff.is_manager() {
                                            (nav_item("/console/terminations", "Ended calls", nav == Nav::Terminations))
                                            (nav_item("/console/arrangements", "Arrangements", nav == Nav::Arrangements))
                                        }
                                    }
                                }
                                div class="fl-signed-in" {
                                    span class="govuk-body-s fl-signed-in__name" { "Signed in as " strong { (staff.name) } }
                                    form method="post" action="/console/sign-out" class="fl-inline-form" {
                                        (csrf(staff))
                                        button type="submit" class="govuk-button govuk-button--secondary fl-sign-out" { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                }
                div class="govuk-width-container" {
                    main class="govuk-main-wrapper" id="main-content" {
                        (body)
                    }
                }
                footer class="govuk-footer" {
                    div class="govuk-width-container" {
                        p class="govuk-body-s" { "Fairline staff console. Calls are recorded for review as the organisation's policy on unacceptable actions says." }
                    }
                }
            }
        }
    }
}

fn nav_item(href: &str, label: &str, active: bool) -> Markup {
    html! {
        @if active {
            li class="govuk-service-navigation__item govuk-service-navigation__item--active" {
                a class="govuk-service-navigation__link" href=(href) aria-current="page" {
                    strong class="govuk-service-navigation__active-fallback" { (label) }
                }
            }
        } @else {
            li class="govuk-service-navigation__item" {
                a class="govuk-service-navigation__link" href=(href) { (label) }
            }
        }
    }
}

pub fn csrf(staff: &Staff) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(staff.csrf_token); }
}

/// The GOV.UK error summary: every problem, each linking to its field.
pub fn error_summary(problems: &[FieldProblem]) -> Markup {
    html! {
        @if !problems.is_empty() {
            div class="govuk-error-summary" data-module="govuk-error-summary" {
                div role="alert" {
                    h2 class="govuk-error-summary__title" { "There is a problem" }
                    div class="govuk-error-summary__body" {
                        ul class="govuk-list govuk-error-summary__list" {
                            @for p in problems {
                                li { a href={ "#" (p.id) } { (p.message) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn error_message(p: Option<&FieldProblem>) -> Markup {
    html! {
        @if let Some(p) = p {
            p class="govuk-error-message" id={ (p.field) "-error" } {
                span class="govuk-visually-hidden" { "Error: " } (p.message)
            }
        }
    }
}

/// A notification banner (`success` or the neutral "important").
pub fn banner(success: bool, title: &str, heading: &str, body: Option<&str>) -> Markup {
    let class = if success {
        "govuk-notification-banner govuk-notification-banner--success"
    } else {
        "govuk-notification-banner"
    };
    html! {
        div class=(class) role=(if success { "alert" } else { "region" })
            aria-labelledby="notification-banner-title" data-module="govuk-notification-banner" {
            div class="govuk-notification-banner__header" {
                h2 class="govuk-notification-banner__title" id="notification-banner-title" { (title) }
            }
            div class="govuk-notification-banner__content" {
                p class="govuk-notification-banner__heading" { (heading) }
                @if let Some(b) = body { p class="govuk-body" { (b) } }
            }
        }
    }
}

/// A summary list row.
pub fn summary_row(key: &str, value: Markup) -> Markup {
    html! {
        div class="govuk-summary-list__row" {
            dt class="govuk-summary-list__key" { (key) }
            dd class="govuk-summary-list__value" { (value) }
        }
    }
}

/// A page with just a heading and a paragraph (errors, refusals).
pub fn message_page(title: &str, text: &str) -> Markup {
    page(
        title,
        None,
        Nav::None,
        false,
        html! {
            h1 class="govuk-heading-l" { (title) }
            p class="govuk-body" { (text) }
            p class="govuk-body" { a class="govuk-link" href="/console/" { "Go to the console home page" } }
        },
    )
}

/// After an OpenID Connect sign-in: on to the console by a same-site navigation (a meta
/// refresh, no script), with a link for browsers that do not follow it.
pub fn continue_page() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" class="govuk-template" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0;url=/console/";
                title { "Signed in – Fairline staff console" }
                meta name="viewport" content="width=device-width, initial-scale=1";
                link rel="stylesheet" href="/console/assets/govuk-frontend.min.css";
            }
            body class="govuk-template__body" {
                div class="govuk-width-container" {
                    main class="govuk-main-wrapper" id="main-content" {
                        h1 class="govuk-heading-l" { "You are signed in" }
                        p class="govuk-body" { a class="govuk-link" href="/console/" { "Continue to the staff console" } }
                    }
                }
            }
        }
    }
}

/// Markup that is already safe (used for fixed entity text only).
pub fn raw(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}

fn group_class(p: Option<&FieldProblem>) -> &'static str {
    if p.is_some() {
        "govuk-form-group govuk-form-group--error"
    } else {
        "govuk-form-group"
    }
}

fn described_by(hint: Option<&str>, id: &str, p: Option<&FieldProblem>) -> Option<String> {
    let mut ids = Vec::new();
    if hint.is_some() {
        ids.push(format!("{id}-hint"));
    }
    if let Some(p) = p {
        ids.push(format!("{}-error", p.field));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// A labelled text input (`width`: a GOV.UK width class such as `govuk-input--width-10`).
pub fn text_input(
    id: &str,
    label: &str,
    hint: Option<&str>,
    value: &str,
    problem: Option<&FieldProblem>,
    width: &str,
) -> Markup {
    html! {
        div class=(group_class(problem)) {
            label class="govuk-label govuk-label--s" for=(id) { (label) }
            @if let Some(h) = hint { div class="govuk-hint" id={ (id) "-hint" } { (h) } }
            (error_message(problem))
            input class={ "govuk-input " (width) @if problem.is_some() { " govuk-input--error" } }
                id=(id) name=(id) type="text" spellcheck="false" value=(value)
                aria-describedby=[described_by(hint, id, problem)];
        }
    }
}

/// A labelled textarea.
pub fn textarea(
    id: &str,
    label: &str,
    hint: Option<&str>,
    value: &str,
    problem: Option<&FieldProblem>,
) -> Markup {
    html! {
        div class=(group_class(problem)) {
            label class="govuk-label govuk-label--s" for=(id) { (label) }
            @if let Some(h) = hint { div class="govuk-hint" id={ (id) "-hint" } { (h) } }
            (error_message(problem))
            textarea class={ "govuk-textarea" @if problem.is_some() { " govuk-textarea--error" } }
                id=(id) name=(id) rows="3"
                aria-describedby=[described_by(hint, id, problem)] { (value) }
        }
    }
}

/// The GOV.UK date input: day, month and year in one fieldset. Inputs are named and
/// identified `{id}-day`, `{id}-month`, `{id}-year`.
pub fn date_input(
    id: &str,
    legend: &str,
    hint: Option<&str>,
    parts: &crate::console::arrangements::DateParts,
    problem: Option<&FieldProblem>,
) -> Markup {
    let err = if problem.is_some() {
        " govuk-input--error"
    } else {
        ""
    };
    html! {
        div class=(group_class(problem)) {
            fieldset class="govuk-fieldset" role="group" aria-describedby=[described_by(hint, id, problem)] {
                legend class="govuk-fieldset__legend govuk-fieldset__legend--s" { (legend) }
                @if let Some(h) = hint { div class="govuk-hint" id={ (id) "-hint" } { (h) } }
                (error_message(problem))
                div class="govuk-date-input" id=(id) {
                    @for (part, label, value, width) in [("day", "Day", &parts.day, 2), ("month", "Month", &parts.month, 2), ("year", "Year", &parts.year, 4)] {
                        div class="govuk-date-input__item" {
                            div class="govuk-form-group" {
                                label class="govuk-label govuk-date-input__label" for={ (id) "-" (part) } { (label) }
                                input class={ "govuk-input govuk-date-input__input govuk-input--width-" (width) (err) }
                                    id={ (id) "-" (part) } name={ (id) "-" (part) } type="text" inputmode="numeric" value=(value);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Radios in a fieldset; the first radio's id is `id`, the others `{id}-2`, `{id}-3`…
#[allow(clippy::too_many_arguments)]
pub fn radios(
    id: &str,
    name: &str,
    legend: &str,
    hint: Option<&str>,
    options: &[(&str, &str)],
    selected: &str,
    problem: Option<&FieldProblem>,
    inline: bool,
) -> Markup {
    html! {
        div class=(group_class(problem)) {
            fieldset class="govuk-fieldset" aria-describedby=[described_by(hint, id, problem)] {
                legend class="govuk-fieldset__legend govuk-fieldset__legend--s" { (legend) }
                @if let Some(h) = hint { div class="govuk-hint" id={ (id) "-hint" } { (h) } }
                (error_message(problem))
                div class={ "govuk-radios govuk-radios--small" @if inline { " govuk-radios--inline" } } data-module="govuk-radios" {
                    @for (i, (value, label)) in options.iter().enumerate() {
                        @let rid = if i == 0 { id.to_owned() } else { format!("{id}-{}", i + 1) };
                        div class="govuk-radios__item" {
                            input class="govuk-radios__input" id=(rid) name=(name) type="radio" value=(value) checked[selected == *value];
                            label class="govuk-label govuk-radios__label" for=(rid) { (label) }
                        }
                    }
                }
            }
        }
    }
}

/// Checkboxes in a fieldset; the first box's id is `id`, the others `{id}-2`…
pub fn checkboxes(
    id: &str,
    name: &str,
    legend: &str,
    hint: Option<&str>,
    options: &[(String, String)],
    selected: &[String],
    problem: Option<&FieldProblem>,
) -> Markup {
    html! {
        div class=(group_class(problem)) {
            fieldset class="govuk-fieldset" aria-describedby=[described_by(hint, id, problem)] {
                legend class="govuk-fieldset__legend govuk-fieldset__legend--s" { (legend) }
                @if let Some(h) = hint { div class="govuk-hint" id={ (id) "-hint" } { (h) } }
                (error_message(problem))
                div class="govuk-checkboxes govuk-checkboxes--small" data-module="govuk-checkboxes" {
                    @for (i, (value, label)) in options.iter().enumerate() {
                        @let cid = if i == 0 { id.to_owned() } else { format!("{id}-{}", i + 1) };
                        div class="govuk-checkboxes__item" {
                            input class="govuk-checkboxes__input" id=(cid) name=(name) type="checkbox" value=(value) checked[selected.contains(value)];
                            label class="govuk-label govuk-checkboxes__label" for=(cid) { (label) }
                        }
                    }
                }
            }
        }
    }
}

/// A GOV.UK tag.
pub fn tag(text: &str, colour: &str) -> Markup {
    html! { strong class={ "govuk-tag govuk-tag--" (colour) } { (text) } }
}
