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
pub mod views;

use tokio::net::TcpListener;

pub use api::app;
pub use config::Config;
pub use state::{AppState, Overrides};

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
    api::app::serve_until(listener, app(state.clone()), token).await?;
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
    if let Some(handle) = state.metrics.clone() {
        tasks.push(telemetry::spawn_upkeep(handle, state.shutdown.clone()));
    }
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
