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
