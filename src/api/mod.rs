//! The HTTP edge: [`app`] assembles every route; the `/api/v1` JSON API (SPEC §5, §6, §9):
//! bearer tokens with roles, problem+json errors.

pub mod app;
pub mod arrangements;
pub mod console;
pub mod decisions;
pub mod error;
pub mod evaluate;
pub mod extract;
pub mod lifecycle;
pub mod openapi;
pub mod query;
pub mod rejection;
pub mod schemas;
pub mod terminations;

use axum::Router;

use crate::state::AppState;

pub use app::app;

pub fn router(state: AppState) -> Router<AppState> {
    let timeout = state.config.server.request_timeout;
    let (routes, _document) = openapi::operations().split_for_parts();
    routes
        .method_not_allowed_fallback(rejection::method_not_allowed)
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async { error::ApiError::Timeout },
                ))
                .layer(tower::timeout::TimeoutLayer::new(timeout)),
        )
}
