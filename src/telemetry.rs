//! Logging set-up (tracing), and Prometheus metrics.
//!
//! Logs are human-readable by default and JSON when `FAIRLINE_LOG_FORMAT=json`. Nothing in
//! Fairline logs a raw phone number, token or signature: numbers go through
//! `PhoneNumber::masked()` / `domain::mask_number`, secrets are `config::Secret`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Install the global tracing subscriber (once; later calls do nothing).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let json = std::env::var("FAIRLINE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer()).try_init()
    };
    let _ = result;
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use). `None` if another recorder
/// was installed first.
pub fn prometheus() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &[
                        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                        0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "fairline_decisions_total",
        "Webhook decisions, by provider, outcome and reason (no numbers)."
    );
    describe_histogram!(
        "fairline_decision_duration_seconds",
        Unit::Seconds,
        "Time to decide for one incoming call, lookup included."
    );
    describe_counter!(
        "fairline_cache_lookups_total",
        "Arrangement lookups by result: hit, negative_hit, miss, stale, failed."
    );
    describe_counter!(
        "fairline_lookup_failures_total",
        "Decisions made without the store (stale cache or the failure default)."
    );
    describe_counter!(
        "fairline_hangups_total",
        "Hang-up requests to the platforms, by provider and result."
    );
    describe_gauge!(
        "fairline_outbox_depth",
        "Termination notifications waiting to be delivered."
    );
    describe_counter!(
        "fairline_webhook_failures_total",
        "Webhook requests answered with the fallback response after an internal failure."
    );
}
