//! Retention: a background task deletes decision-log rows and reviewed terminations older than
//! `[retention]` allows, and logs how many it deleted.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::state::AppState;

/// How often the retention sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// What one sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub decisions: u64,
    pub terminations: u64,
}

/// One sweep at `now`.
pub async fn sweep(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<Swept, crate::store::StoreError> {
    let r = &state.config.retention;
    let decisions_before = now - chrono::Duration::days(i64::from(r.decision_log_days));
    let decisions = state.store.purge_decisions(decisions_before).await?;
    let terminations = purge_terminations(state, now).await?;
    let swept = Swept {
        decisions,
        terminations,
    };
    tracing::info!(
        decisions = swept.decisions,
        terminations = swept.terminations,
        "retention sweep deleted old records"
    );
    Ok(swept)
}

/// Only reviewed terminations are deleted: a pending one waits for its review however old.
async fn purge_terminations(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<u64, crate::store::StoreError> {
    let days = i64::from(state.config.retention.termination_days);
    state
        .store
        .purge_reviewed_terminations(now - chrono::Duration::days(days))
        .await
}

/// Run a sweep shortly after start and then every [`SWEEP_EVERY`], until shutdown.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut next = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(next) => {}
            }
            if let Err(e) = sweep(&state, state.clock.now()).await {
                tracing::warn!(error = %e, "retention sweep failed; will retry");
            }
            next = tokio::time::Instant::now() + SWEEP_EVERY;
        }
    })
}
