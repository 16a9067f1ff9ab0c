//! The notification outbox worker (SPEC §9): every new termination is POSTed as JSON to
//! `notifications.webhook_url`, retried with jittered exponential back-off until the receiver
//! answers 2xx.
//!
//! Rows live in the store (written in the same transaction as the termination's hang-up
//! result), so delivery survives restarts. The worker polls for due rows and is woken at once
//! when a termination enqueues one. Rows are *leased* while being delivered, so that several
//! instances sharing a PostgreSQL store never deliver one row at the same time. Delivery is
//! at-least-once: a process killed after the receiver accepted but before the row was marked
//! delivered sends it again after restart, so receivers deduplicate on the termination `id`
//! (also sent as the `Idempotency-Key` header).
//!
//! The same loop finishes terminations left provisional by a process that stopped half-way
//! (see `terminations::recover_stale`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::state::AppState;
use crate::store::OutboxItem;

/// The event name of a new termination's notification.
pub const EVENT_TERMINATION_CREATED: &str = "termination.created";

/// The first retry waits this long by default; each later one twice as long (jittered).
pub const DEFAULT_BASE_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Undocumented: overrides the base back-off (milliseconds), read once at start. For tests of
/// the real binary; not a configuration key.
pub const BACKOFF_ENV: &str = "FAIRLINE_OUTBOX_BACKOFF_MS";

/// Connecting to the receiver may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One delivery attempt (connect, send, answer) may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a taken row is reserved for this worker (well over `REQUEST_TIMEOUT`).
const LEASE: Duration = Duration::from_secs(60);
/// Rows taken per round.
const BATCH: u32 = 16;
/// The longest pause between two looks at the store.
const MAX_POLL: Duration = Duration::from_secs(1);
/// The longest one store call of the worker may take: a connection that died without a reset
/// (a network that drops packets) would otherwise hold the worker forever.
const STORE_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// `f`, or `Unavailable` once [`STORE_STEP_TIMEOUT`] has passed.
async fn bounded<T>(
    f: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
) -> Result<T, crate::store::StoreError> {
    tokio::time::timeout(STORE_STEP_TIMEOUT, f)
        .await
        .map_err(|_| {
            crate::store::StoreError::Unavailable("the store did not answer in time".into())
        })?
}

/// Shared between the API (which wakes the worker) and the worker.
#[derive(Debug)]
pub struct OutboxControl {
    wake: Notify,
    base_backoff_ms: AtomicU64,
}

impl Default for OutboxControl {
    fn default() -> Self {
        Self::new(DEFAULT_BASE_BACKOFF)
    }
}

impl OutboxControl {
    pub fn new(base_backoff: Duration) -> Self {
        OutboxControl {
            wake: Notify::new(),
            base_backoff_ms: AtomicU64::new(duration_ms(base_backoff)),
        }
    }

    /// The default back-off, unless `FAIRLINE_OUTBOX_BACKOFF_MS` says otherwise.
    pub fn from_env() -> Self {
        let base = std::env::var(BACKOFF_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_BASE_BACKOFF);
        Self::new(base)
    }

    /// A notification was enqueued: look at the store now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Change the base back-off (tests use a few milliseconds).
    pub fn set_base_backoff(&self, base: Duration) {
        self.base_backoff_ms
            .store(duration_ms(base).max(1), Ordering::Relaxed);
    }

    pub fn base_backoff(&self) -> Duration {
        Duration::from_millis(self.base_backoff_ms.load(Ordering::Relaxed))
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The wait before the next attempt after `failures` failed ones (1 → about the base):
/// the base doubled per further failure, at most [`MAX_BACKOFF`], times a random factor in
/// 0.8‥1.2 (and again at most `MAX_BACKOFF`).
pub fn backoff(base: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(MAX_BACKOFF);
    let factor: f64 = rand::thread_rng().gen_range(0.8..=1.2);
    raw.mul_f64(factor).min(MAX_BACKOFF)
}

/// Start the worker; it stops when `state.shutdown` is cancelled.
pub fn spawn(state: &AppState) -> JoinHandle<()> {
    let started_at = Utc::now();
    let state = state.clone();
    tokio::spawn(async move { run(state, started_at).await })
}

async fn run(state: AppState, started_at: chrono::DateTime<Utc>) {
    let http = match reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fairline/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notification HTTP client: outbox stopped");
            return;
        }
    };
    if let Err(e) = state.store.release_leases_at_startup(started_at).await {
        tracing::warn!(error = %e, "could not release outbox leases at start");
    }
    let url = state.config.notifications.webhook_url.clone();
    loop {
        if state.shutdown.is_cancelled() {
            break;
        }
        if let Err(e) = bounded(crate::terminations::recover_stale(&state)).await {
            tracing::warn!(error = %e, "could not check for interrupted terminations");
        }
        let mut full_batch = false;
        if let Some(url) = url.as_deref() {
            match deliver_due(&state, &http, url).await {
                Ok(n) => full_batch = n >= BATCH as usize,
                Err(e) => tracing::warn!(error = %e, "could not read the outbox"),
            }
            match crate::notices::deliver_due(&state, &http, url).await {
                Ok(n) => full_batch |= n >= BATCH as usize,
                Err(e) => tracing::warn!(error = %e, "could not read the notices"),
            }
        }
        let notices = bounded(state.store.pending_notices()).await.unwrap_or(0);
        match bounded(state.store.outbox_depth()).await {
            Ok(depth) => metrics::gauge!("fairline_outbox_depth").set((depth + notices) as f64),
            Err(e) => tracing::warn!(error = %e, "could not count the outbox"),
        }
        if full_batch {
            continue;
        }
        let poll = state
            .outbox
            .base_backoff()
            .clamp(Duration::from_millis(20), MAX_POLL);
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            _ = state.outbox.wake.notified() => {},
            _ = tokio::time::sleep(poll) => {},
        }
    }
    tracing::debug!("outbox worker stopped");
}

/// Deliver what is due; returns how many rows were taken.
async fn deliver_due(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
) -> Result<usize, crate::store::StoreError> {
    let now = Utc::now();
    let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    let items = bounded(state.store.take_due_notifications(now, lease_until, BATCH)).await?;
    let taken = items.len();
    for item in items {
        if state.shutdown.is_cancelled() {
            // The lease runs out (or is released at the next start); the row is not lost.
            break;
        }
        let signing = state.config.lifecycle.signing_secret.as_ref();
        match post(http, url, &item, signing).await {
            Ok(()) => {
                tracing::info!(
                    termination_id = %item.termination_id,
                    event = %item.event,
                    attempt = item.attempts + 1,
                    "notification delivered"
                );
                bounded(state.store.notification_delivered(item.id, Utc::now())).await?;
            }
            Err(problem) => {
                let failures = item.attempts.saturating_add(1);
                let wait = backoff(state.outbox.base_backoff(), failures);
                let retry_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                tracing::warn!(
                    termination_id = %item.termination_id,
                    event = %item.event,
                    attempt = failures,
                    problem = %problem,
                    retry_in_ms = duration_ms(wait),
                    "notification not accepted; will retry"
                );
                bounded(state.store.notification_failed(item.id, retry_at, &problem)).await?;
            }
        }
    }
    Ok(taken)
}

/// One attempt. The error is short and holds neither the URL nor the payload (the URL may
/// carry a secret; the payload carries the caller's number).
async fn post(
    http: &reqwest::Client,
    url: &str,
    item: &OutboxItem,
    signing: Option<&crate::config::lifecycle::SigningSecret>,
) -> Result<(), String> {
    let mut request = http.post(url);
    if let Some(secret) = signing {
        let id = crate::signing::message_id(item.termination_id.as_str(), &item.event);
        let now = Utc::now().timestamp();
        for (name, value) in crate::signing::headers(secret, &id, now, item.payload.as_bytes()) {
            request = request.header(name, value);
        }
    }
    let result = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", item.termination_id.as_str())
        .header("X-Fairline-Event", item.event.as_str())
        .body(item.payload.clone())
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
        Err(e) if e.is_timeout() => Err("timed out".into()),
        Err(e) if e.is_connect() => Err("connection failed".into()),
        Err(_) => Err("request failed".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(1);
        for _ in 0..50 {
            let first = backoff(base, 1);
            assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
            let third = backoff(base, 3);
            assert!(third >= Duration::from_millis(3200) && third <= Duration::from_millis(4800));
            assert!(backoff(base, 40) <= MAX_BACKOFF);
            assert!(backoff(base, 40) >= MAX_BACKOFF.mul_f64(0.8));
        }
    }

    #[test]
    fn the_base_can_be_changed() {
        let c = OutboxControl::default();
        assert_eq!(c.base_backoff(), DEFAULT_BASE_BACKOFF);
        c.set_base_backoff(Duration::from_millis(25));
        assert_eq!(c.base_backoff(), Duration::from_millis(25));
    }
}
