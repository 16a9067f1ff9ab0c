//! The console's HTTP layer (SPEC §12): the router, the page handlers and forms, the session
//! extractor, CSRF and security headers. What has no HTTP in it (views, words, session rules,
//! live calls) is in [`crate::console`].

pub mod arrangements;
pub mod oidc;
pub mod pages;
pub mod session;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;

use crate::state::AppState;

/// A page as an HTML response.
pub fn html(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

pub fn router(state: AppState) -> Router<AppState> {
    let _ = state;
    Router::new()
        .route(
            "/console",
            get(|| async { axum::response::Redirect::to("/console/") }),
        )
        .route("/console/", get(pages::home))
        .route(
            "/console/sign-in",
            get(pages::sign_in_form).post(pages::sign_in),
        )
        .route("/console/sign-in/oidc", get(oidc::start))
        .route("/console/sign-in/oidc/callback", get(oidc::callback))
        .route("/console/sign-out", post(pages::sign_out))
        .route("/console/calls", get(pages::calls))
        .route(
            "/console/calls/{provider}/{call_id}/end",
            get(pages::end_form).post(pages::end_submit),
        )
        .route("/console/terminations", get(pages::terminations))
        .route("/console/terminations/{id}", get(pages::termination_detail))
        .route(
            "/console/terminations/{id}/review",
            post(pages::review_submit),
        )
        .route(
            "/console/arrangements",
            get(arrangements::list).post(arrangements::create),
        )
        .route("/console/arrangements/new", get(arrangements::new_form))
        .route("/console/arrangements/{id}", get(arrangements::detail))
        .route(
            "/console/arrangements/{id}/edit",
            get(arrangements::edit_form).post(arrangements::edit),
        )
        .route(
            "/console/arrangements/{id}/revoke",
            get(arrangements::revoke_form).post(arrangements::revoke),
        )
        .route(
            "/console/arrangements/{id}/what-if",
            get(arrangements::what_if),
        )
        .route(
            "/console/arrangements/{id}/reviews",
            post(arrangements::review),
        )
        .route(
            "/console/arrangements/{id}/appeals",
            post(arrangements::appeal),
        )
        .route(
            "/console/arrangements/{id}/letter",
            get(arrangements::letter_preview),
        )
        .route(
            "/console/arrangements/{id}/letter.pdf",
            get(arrangements::letter_pdf),
        )
        .route("/console/appeals/{id}/decision", post(arrangements::decide))
        .route("/console/assets/{name}", get(pages::asset))
        .route("/console/{*rest}", get(pages::fallback))
        .layer(axum::middleware::from_fn(session::security_headers))
}
