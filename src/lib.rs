//! Fairline: enforces contact arrangements on a public body's phone line.
//!
//! The library exposes [`app`] (the router, for tests and embedding) and [`run`] (serve a
//! configuration on a listener until SIGTERM/SIGINT). `main.rs` is a thin CLI over [`cli`].
#![forbid(unsafe_code)]

pub mod api;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod domain;
pub mod engine;
pub mod fields;
pub mod letters;
pub mod messages;
pub mod notices;
pub mod outbox;
pub mod providers;
pub mod retention;
pub mod service;
pub mod signing;
pub mod spool;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod terminations;
pub mod urgent;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use state::{AppState, Overrides};

/// The whole HTTP surface: webhooks, the `/api/v1` JSON API, health and metrics.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(api::router(state.clone()))
        .merge(webhook_routes(&state))
        .merge(console::router(state.clone()))
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
        )
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

/// Serve a configuration on a listener until SIGTERM or SIGINT, then finish in-flight
/// requests, stop background work and return.
pub async fn run(config: Config, listener: TcpListener) -> anyhow::Result<()> {
    warn_about_risky_settings(&config);
    let state = AppState::build(config, Overrides::default()).await?;
    let token = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: finishing in-flight requests");
        token.cancel();
    });
    serve(state, listener).await
}

/// Serve an already-built state until `state.shutdown` is cancelled.
pub async fn serve(state: AppState, listener: TcpListener) -> anyhow::Result<()> {
    let background = start_background(&state);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "fairline listening");
    let token = state.shutdown.clone();
    let router = app(state.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await?;
    state.shutdown.cancel();
    // Let work started by requests (Telnyx commands) finish, within reason.
    state.tasks.close();
    if tokio::time::timeout(std::time::Duration::from_secs(10), state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some in-flight platform commands did not finish in 10 s");
    }
    for task in background {
        // Tasks watch `state.shutdown`; give them a moment to flush, then stop them.
        let abort = task.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    tracing::info!("fairline stopped");
    Ok(())
}

/// Background tasks: cache invalidation across instances, the notification outbox (which
/// also finishes interrupted terminations) (and later retention).
fn start_background(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(t) = state
        .cache
        .spawn_change_listener_until(state.shutdown.clone())
    {
        tasks.push(t);
    }
    tasks.push(retention::spawn(state.clone()));
    tasks.push(notices::spawn(state.clone()));
    tasks.push(outbox::spawn(state));
    tasks.push(spool::spawn(state));
    tasks.extend(console::live::spawn(state));
    tasks
}

fn warn_about_risky_settings(config: &Config) {
    if config.twilio.enabled && !config.twilio.verify_signatures {
        tracing::warn!(
            "!!! twilio.verify_signatures = false: ANYONE can post fake Twilio webhooks. \
             Only for local development !!!"
        );
    }
    if config.telnyx.enabled && !config.telnyx.verify_signatures {
        tracing::warn!(
            "!!! telnyx.verify_signatures = false: ANYONE can post fake Telnyx webhooks. \
             Only for local development !!!"
        );
    }
    if config.vonage.enabled && !config.vonage.verify_signatures {
        tracing::warn!(
            "!!! vonage.verify_signatures = false: ANYONE can post fake Vonage webhooks. \
             Only for local development !!!"
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
