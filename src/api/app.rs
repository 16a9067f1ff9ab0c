//! The whole HTTP surface assembled: health, metrics, the JSON API, every platform's
//! webhooks and the console, under the body-limit, problem+json and trace layers.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::{api, providers};

/// The whole HTTP surface: webhooks, the `/api/v1` JSON API, health and metrics.
///
/// The platforms' webhooks sit outside the layers of everything else and have only the body
/// limit (413 above `server.max_body_bytes`, with or without a Content-Length): they need no
/// request span (their one "call decided" line names the provider and the call), and the
/// problem+json rewrite is for `/api/` only. The trace and middleware layers cost about an
/// eighth of an unknown caller's webhook under load (bench/run.sh, docs/benchmarks.md).
pub fn app(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let everything_else = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(api::router(state.clone()))
        .merge(api::console::router(state.clone()))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn(
            api::rejection::problem_json_errors,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // The path only: queries may carry numbers (`?phone=`).
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %ulid::Ulid::new(),
                    call_id = tracing::field::Empty,
                )
            }),
        );
    // `everything_else` first: its fallback (a problem+json 404, through its layers) stays the
    // fallback of the whole.
    everything_else
        .merge(webhook_routes(&state).layer(DefaultBodyLimit::max(max_body)))
        .with_state(state)
}

/// The webhook routes of every platform switched on. A platform switched off in the
/// configuration (SPEC §11) has no routes: its webhooks answer 404.
fn webhook_routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    if state.config.twilio.enabled {
        router = router.merge(providers::twilio::webhook::routes());
    }
    if state.config.telnyx.enabled {
        router = router.merge(providers::telnyx::webhook::routes());
    }
    if state.config.vonage.enabled {
        router = router.merge(providers::vonage::webhook::routes());
    }
    router
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}

/// Serve `router` on `listener` until `token` is cancelled, finishing in-flight requests.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    token: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await
}
