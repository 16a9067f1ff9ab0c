//! The staff console (SPEC §12): server-rendered pages under `/console/` for agents (Live
//! calls, End call) and managers (Ended calls and their review). Works without JavaScript;
//! the one small script (the Live calls refresh) and all CSS are served from the binary.
//!
//! * [`session`]: sign-in sessions in the store, cookies, CSRF, security headers;
//! * [`live`]: live-call rows, written off the webhook path by a background writer;
//! * [`pages`]: the pages and forms; [`views`]: the GOV.UK Design System patterns;
//! * [`endcall`]: the single adapter into the §9 end-call and review flows.

pub mod config;
pub mod endcall;
pub mod live;
pub mod oidc;
pub mod pages;
pub mod session;
pub mod views;
pub mod words;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

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
        .route("/console/assets/{name}", get(pages::asset))
        .route("/console/{*rest}", get(pages::fallback))
        .layer(axum::middleware::from_fn(session::security_headers))
}
