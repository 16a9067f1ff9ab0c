//! The `/api/v1` JSON API (SPEC §5, §6, §9): bearer tokens with roles, problem+json errors.

pub mod arrangements;
pub mod decisions;
pub mod error;
pub mod evaluate;
pub mod extract;
pub mod lifecycle;
pub mod openapi;
pub mod query;
pub mod terminations;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    let timeout = state.config.server.request_timeout;
    Router::new()
        .route("/api/v1/evaluate", post(evaluate::evaluate))
        .route(
            "/api/v1/arrangements",
            post(arrangements::create).get(arrangements::list),
        )
        .route(
            "/api/v1/arrangements/{id}",
            get(arrangements::get_one).put(arrangements::update),
        )
        .route(
            "/api/v1/arrangements/{id}/revoke",
            post(arrangements::revoke),
        )
        .route(
            "/api/v1/arrangements/{id}/history",
            get(arrangements::history),
        )
        .route(
            "/api/v1/arrangements/{id}/reviews",
            post(lifecycle::create_review).get(lifecycle::list_reviews),
        )
        .route(
            "/api/v1/arrangements/{id}/appeals",
            post(lifecycle::create_appeal),
        )
        .route("/api/v1/arrangements/{id}/letter", get(lifecycle::letter))
        .route("/api/v1/appeals", get(lifecycle::list_appeals))
        .route("/api/v1/appeals/{id}", get(lifecycle::get_appeal))
        .route(
            "/api/v1/appeals/{id}/decision",
            post(lifecycle::decide_appeal),
        )
        .route("/api/v1/decisions", get(decisions::list))
        .route(
            "/api/v1/calls/{provider}/{call_id}/terminate",
            post(terminations::terminate),
        )
        .route("/api/v1/terminations", get(terminations::list))
        .route("/api/v1/terminations/{id}", get(terminations::get_one))
        .route(
            "/api/v1/terminations/{id}/review",
            post(terminations::review),
        )
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async { error::ApiError::Timeout },
                ))
                .layer(tower::timeout::TimeoutLayer::new(timeout)),
        )
}
