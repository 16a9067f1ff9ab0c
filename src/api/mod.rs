//! The `/api/v1` JSON API (SPEC §5, §6, §9): bearer tokens with roles, problem+json errors.

pub mod error;
pub mod evaluate;
pub mod extract;

use axum::routing::post;
use axum::Router;

use crate::state::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    let timeout = state.config.server.request_timeout;
    Router::new()
        .route("/api/v1/evaluate", post(evaluate::evaluate))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
}
