//! Logging set-up (tracing), and Prometheus metrics.
//!
//! Logs are human-readable by default and JSON when `FAIRLINE_LOG_FORMAT=json`. Nothing in
//! Fairline logs a raw phone number, token or signature: numbers go through
//! `PhoneNumber::masked()` / `domain::mask_number`, secrets are `config::Secret`.

use std::sync::OnceLock;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::domain::Provider;
use crate::engine::{Decision, Outcome, Reason};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub mod log_format;
pub mod log_writer;

/// Keeps the log writer's thread alive; dropping it flushes every line still queued. Hold it
/// for the life of the process (`fairline serve` drops it after the server has stopped).
pub type LogGuard = Option<log_writer::WriterGuard>;

/// Install the global tracing subscriber (once; later calls do nothing and return `None`).
///
/// Lines are formatted on the calling thread and written to stderr by a dedicated thread in
/// batches ([`log_writer`]: every 50 ms, sooner when much is waiting, everything at shutdown),
/// so a request never waits on the log's file or pipe and never wakes a thread for its line.
/// Nothing is dropped: when the writer falls far behind, callers wait rather than lose lines.
/// ANSI colours only when stderr is a terminal. The text format's timestamp and fields are
/// written by [`log_format`] (the same bytes as tracing-subscriber's defaults, faster).
pub fn init_tracing() -> LogGuard {
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    init_tracing_to(std::io::stderr(), ansi)
}

/// [`init_tracing`] with the lines written to `out` (the in-process benchmark discards them),
/// ANSI colours as told.
pub fn init_tracing_to<W: std::io::Write + Send + 'static>(out: W, ansi: bool) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let json = std::env::var("FAIRLINE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let (writer, guard) = log_writer::start(out);
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .event_format(log_format::LogLine::default())
                    .fmt_fields(log_format::LogFields)
                    .with_writer(writer),
            )
            .try_init()
    };
    result.ok().map(|()| guard)
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

/// How often the recorder's histograms are drained (see [`spawn_upkeep`]).
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The Prometheus recorder keeps every histogram sample in a queue until it is drained: by a
/// scrape of `/metrics`, or by this task. Without it a service nobody scrapes would grow by
/// a sample per decided call, for ever.
pub fn spawn_upkeep(
    handle: PrometheusHandle,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => handle.run_upkeep(),
                _ = shutdown.cancelled() => return,
            }
        }
    })
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

/// The result of one arrangement-cache lookup, as counted in `fairline_cache_lookups_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    NegativeHit,
    Miss,
    Stale,
    Failed,
}

impl CacheResult {
    const ALL: [CacheResult; 5] = [
        CacheResult::Hit,
        CacheResult::NegativeHit,
        CacheResult::Miss,
        CacheResult::Stale,
        CacheResult::Failed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::NegativeHit => "negative_hit",
            CacheResult::Miss => "miss",
            CacheResult::Stale => "stale",
            CacheResult::Failed => "failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const PROVIDERS: [Provider; 3] = [Provider::Twilio, Provider::Telnyx, Provider::Vonage];
const OUTCOMES: [Outcome; 3] = [Outcome::Continue, Outcome::Route, Outcome::Refuse];
const REASONS: [Reason; 10] = [
    Reason::WithheldNumber,
    Reason::UnrecognisedNumber,
    Reason::NoArrangement,
    Reason::Blocked,
    Reason::OutsideWindow,
    Reason::AllowanceUsed,
    Reason::DesignatedStaff,
    Reason::WithinArrangement,
    Reason::LookupFailed,
    Reason::UrgentRoute,
];

fn provider_index(p: Provider) -> usize {
    match p {
        Provider::Twilio => 0,
        Provider::Telnyx => 1,
        Provider::Vonage => 2,
    }
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Continue => 0,
        Outcome::Route => 1,
        Outcome::Refuse => 2,
    }
}

fn reason_index(r: Reason) -> usize {
    match r {
        Reason::WithheldNumber => 0,
        Reason::UnrecognisedNumber => 1,
        Reason::NoArrangement => 2,
        Reason::Blocked => 3,
        Reason::OutsideWindow => 4,
        Reason::AllowanceUsed => 5,
        Reason::DesignatedStaff => 6,
        Reason::WithinArrangement => 7,
        Reason::LookupFailed => 8,
        Reason::UrgentRoute => 9,
    }
}

/// The metrics recorded on every call, registered once: recording through a handle is an
/// atomic add, where `metrics::counter!(name, labels…)` hashes the labels and looks the series
/// up in the registry every time.
pub struct CallMetrics {
    /// `fairline_decisions_total`, indexed by provider, outcome and reason.
    decisions: Vec<Counter>,
    /// `fairline_decision_duration_seconds`, by provider.
    durations: Vec<Histogram>,
    /// `fairline_cache_lookups_total`, by result.
    cache_lookups: Vec<Counter>,
}

static CALL_METRICS: OnceLock<CallMetrics> = OnceLock::new();

/// The per-call metric handles (registered with the Prometheus recorder on first use).
pub fn call_metrics() -> &'static CallMetrics {
    CALL_METRICS.get_or_init(|| {
        // The recorder must exist before the handles are made, or they would record nowhere.
        let _ = prometheus();
        CallMetrics::register()
    })
}

impl CallMetrics {
    fn register() -> Self {
        let mut decisions = Vec::with_capacity(PROVIDERS.len() * OUTCOMES.len() * REASONS.len());
        for p in PROVIDERS {
            for o in OUTCOMES {
                for r in REASONS {
                    decisions.push(metrics::counter!(
                        "fairline_decisions_total",
                        "provider" => p.as_str(),
                        "outcome" => o.as_str(),
                        "reason" => r.as_str(),
                    ));
                }
            }
        }
        let durations = PROVIDERS
            .iter()
            .map(|p| {
                metrics::histogram!("fairline_decision_duration_seconds", "provider" => p.as_str())
            })
            .collect();
        let cache_lookups = CacheResult::ALL
            .iter()
            .map(|r| metrics::counter!("fairline_cache_lookups_total", "result" => r.as_str()))
            .collect();
        CallMetrics {
            decisions,
            durations,
            cache_lookups,
        }
    }

    /// Count one decision and the time it took.
    pub fn decided(&self, provider: Provider, decision: &Decision, took: std::time::Duration) {
        let i = (provider_index(provider) * OUTCOMES.len() + outcome_index(decision.outcome))
            * REASONS.len()
            + reason_index(decision.reason);
        if let Some(c) = self.decisions.get(i) {
            c.increment(1);
        }
        if let Some(h) = self.durations.get(provider_index(provider)) {
            h.record(took.as_secs_f64());
        }
    }

    /// Count one arrangement-cache lookup.
    pub fn cache_lookup(&self, result: CacheResult) {
        if let Some(c) = self.cache_lookups.get(result.index()) {
            c.increment(1);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_label_tables_are_indexed_in_order() {
        for (i, p) in PROVIDERS.iter().enumerate() {
            assert_eq!(provider_index(*p), i);
        }
        for (i, o) in OUTCOMES.iter().enumerate() {
            assert_eq!(outcome_index(*o), i);
        }
        for (i, r) in REASONS.iter().enumerate() {
            assert_eq!(reason_index(*r), i);
        }
        for (i, r) in CacheResult::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[tokio::test]
    async fn the_upkeep_task_drains_histograms_without_losing_samples_and_stops_on_shutdown() {
        let Some(handle) = prometheus() else {
            panic!("no Prometheus recorder");
        };
        let h = metrics::histogram!("fairline_test_upkeep_seconds");
        for _ in 0..3 {
            h.record(0.001);
        }
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = spawn_upkeep(handle.clone(), shutdown.clone());
        // The first tick is immediate: give it a moment, then stop the task.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        shutdown.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(2), task)
            .await
            .expect("the upkeep task stops on shutdown")
            .unwrap();
        let text = handle.render();
        assert!(
            text.lines()
                .any(|l| l.starts_with("fairline_test_upkeep_seconds_count") && l.ends_with(" 3")),
            "{text}"
        );
    }

    #[test]
    fn a_decision_is_counted_under_its_own_labels() {
        let Some(handle) = prometheus() else {
            panic!("no Prometheus recorder");
        };
        let m = call_metrics();
        let decision = Decision::plain(Outcome::Refuse, Reason::OutsideWindow);
        let series = "fairline_decisions_total{provider=\"vonage\",outcome=\"refuse\",reason=\"outside_window\"}";
        let before = counter_value(&handle.render(), series);
        m.decided(
            Provider::Vonage,
            &decision,
            std::time::Duration::from_millis(1),
        );
        m.decided(
            Provider::Vonage,
            &decision,
            std::time::Duration::from_millis(1),
        );
        assert_eq!(counter_value(&handle.render(), series), before + 2);
        let series = "fairline_cache_lookups_total{result=\"negative_hit\"}";
        let before = counter_value(&handle.render(), series);
        m.cache_lookup(CacheResult::NegativeHit);
        assert_eq!(counter_value(&handle.render(), series), before + 1);
    }

    fn counter_value(text: &str, series: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}
