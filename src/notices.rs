//! Notices to the organisation (SPEC §13): at start and then once a day, a sweep queues one
//! notification per event — `arrangement.review_due` (due within
//! `notifications.reminder_days`), `arrangement.review_overdue`, `arrangement.ending` (ends
//! within the same days) and `arrangement.ended` (expired or revoked within those days) — and
//! `appeal.created` is queued when an appeal is made (the sweep queues any that were missed).
//!
//! Each event is queued once per arrangement version: the store keeps every notice under a
//! unique key (`event:arr_…:vN`), so several instances sweeping the same store queue it once.
//! Notices are delivered by the outbox worker (`outbox::run`) exactly like termination
//! notifications: POSTed to `notifications.webhook_url`, retried with back-off until a 2xx,
//! signed when `notifications.signing_secret` is set. Nothing is queued without a webhook URL.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::domain::{Arrangement, ArrangementStatus};
use crate::state::AppState;
use crate::store::lifecycle::{Appeal, AppealStatus, NewNotice, Notice};
use crate::store::{ArrangementFilter, StoreError};
use crate::views::{AppealView, ArrangementView};

pub const EVENT_REVIEW_DUE: &str = "arrangement.review_due";
pub const EVENT_REVIEW_OVERDUE: &str = "arrangement.review_overdue";
pub const EVENT_ENDING: &str = "arrangement.ending";
pub const EVENT_ENDED: &str = "arrangement.ended";
pub const EVENT_APPEAL_CREATED: &str = "appeal.created";

/// How often the sweep runs after the first one at start.
pub const SWEEP_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// Arrangements read per page during a sweep.
const PAGE: u32 = 500;
/// Notices taken per delivery round.
const BATCH: u32 = 16;
/// How long a taken notice is reserved for one worker.
const LEASE: Duration = Duration::from_secs(60);

/// The events due for `a` at `now` (local dates in `tz`), looking `reminder_days` ahead.
pub fn due_events(
    a: &Arrangement,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
    reminder_days: u32,
) -> Vec<&'static str> {
    let ahead = chrono::Duration::days(i64::from(reminder_days));
    let today = now.with_timezone(&tz).date_naive();
    let mut events = Vec::new();
    match a.status_at(now) {
        ArrangementStatus::Active => {
            if a.review_due < today {
                events.push(EVENT_REVIEW_OVERDUE);
            } else if a.review_due <= today + ahead {
                events.push(EVENT_REVIEW_DUE);
            }
            if a.ends_at <= now + ahead {
                events.push(EVENT_ENDING);
            }
        }
        ArrangementStatus::Expired | ArrangementStatus::Revoked => {
            // Only recent ends: a first sweep does not announce arrangements that ended long ago.
            let ended = crate::store::common::effective_end(a);
            if ended <= now && now - ended <= ahead {
                events.push(EVENT_ENDED);
            }
        }
        ArrangementStatus::Scheduled => {}
    }
    events
}

fn notice_id() -> String {
    format!("ntc_{}", ulid::Ulid::new())
}

fn arrangement_notice(
    state: &AppState,
    a: &Arrangement,
    event: &str,
    now: DateTime<Utc>,
) -> Result<NewNotice, StoreError> {
    let id = notice_id();
    let payload = json!({
        "id": id,
        "event": event,
        "created_at": now,
        "arrangement": ArrangementView::new(a, now, state),
    });
    Ok(NewNotice {
        key: format!("{event}:{}:v{}", a.id, a.version),
        id,
        event: event.to_owned(),
        arrangement_id: a.id.clone(),
        payload: crate::store::common::to_json(&payload)?,
        created_at: now,
    })
}

fn appeal_notice(
    state: &AppState,
    appeal: &Appeal,
    a: &Arrangement,
    now: DateTime<Utc>,
) -> Result<NewNotice, StoreError> {
    let id = notice_id();
    let payload = json!({
        "id": id,
        "event": EVENT_APPEAL_CREATED,
        "created_at": now,
        "appeal": AppealView::from(appeal),
        "arrangement": ArrangementView::new(a, now, state),
    });
    Ok(NewNotice {
        key: format!("{EVENT_APPEAL_CREATED}:{}", appeal.id),
        id,
        event: EVENT_APPEAL_CREATED.to_owned(),
        arrangement_id: a.id.clone(),
        payload: crate::store::common::to_json(&payload)?,
        created_at: now,
    })
}

/// Queue `appeal.created` for a new appeal (when notifications are configured) and wake the
/// outbox. `true` when it was queued now.
pub async fn queue_appeal_created(
    state: &AppState,
    appeal: &Appeal,
    a: &Arrangement,
) -> Result<bool, StoreError> {
    if state.config.notifications.webhook_url.is_none() {
        return Ok(false);
    }
    let queued = state
        .store
        .queue_notice(&appeal_notice(state, appeal, a, state.clock.now())?)
        .await?;
    if queued {
        state.outbox.wake();
    }
    Ok(queued)
}

/// One sweep at the clock's now: queue every due event not queued before. Returns how many
/// notices this call queued (0 without a webhook URL).
pub async fn sweep(state: &AppState) -> Result<usize, StoreError> {
    if state.config.notifications.webhook_url.is_none() {
        return Ok(0);
    }
    let now = state.clock.now();
    let days = state.config.lifecycle.reminder_days;
    let mut queued = 0;
    let mut after = None;
    loop {
        let page = state
            .store
            .list_arrangements(&ArrangementFilter {
                now: Some(now),
                limit: PAGE,
                after: after.clone(),
                ..Default::default()
            })
            .await?;
        for a in &page {
            for event in due_events(a, now, state.calendar.tz, days) {
                if state
                    .store
                    .queue_notice(&arrangement_notice(state, a, event, now)?)
                    .await?
                {
                    queued += 1;
                }
            }
        }
        match page.last() {
            Some(last) if page.len() >= PAGE as usize => after = Some(last.id.clone()),
            _ => break,
        }
    }
    // Appeals whose notice was not queued when they were made (e.g. a crash in between).
    for appeal in state
        .store
        .list_appeals(Some(AppealStatus::Open), None, 1000)
        .await?
    {
        if let Some(a) = state.store.get_arrangement(&appeal.arrangement_id).await? {
            if state
                .store
                .queue_notice(&appeal_notice(state, &appeal, &a, now)?)
                .await?
            {
                queued += 1;
            }
        }
    }
    if queued > 0 {
        tracing::info!(queued, "notices queued");
        state.outbox.wake();
    }
    Ok(queued)
}

/// Run the sweep at start and then every [`SWEEP_EVERY`] until shutdown.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = sweep(&state).await {
                tracing::warn!(error = %e, "the notice sweep failed; it runs again later");
            }
            state
                .notice_sweeps
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            tokio::select! {
                _ = state.shutdown.cancelled() => break,
                _ = tokio::time::sleep(SWEEP_EVERY) => {},
            }
        }
    })
}

/// Deliver the notices that are due (called by the outbox worker); returns how many were taken.
pub async fn deliver_due(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
) -> Result<usize, StoreError> {
    let now = Utc::now();
    let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    let items = state
        .store
        .take_due_notices(now, lease_until, BATCH)
        .await?;
    let taken = items.len();
    for item in items {
        if state.shutdown.is_cancelled() {
            break;
        }
        match post(state, http, url, &item).await {
            Ok(()) => {
                tracing::info!(notice_id = %item.id, event = %item.event, "notice delivered");
                state.store.notice_delivered(&item.id, Utc::now()).await?;
            }
            Err(problem) => {
                let failures = item.attempts.saturating_add(1);
                let wait = crate::outbox::backoff(state.outbox.base_backoff(), failures);
                let retry_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                tracing::warn!(
                    notice_id = %item.id,
                    event = %item.event,
                    attempt = failures,
                    problem = %problem,
                    "notice not accepted; will retry"
                );
                state
                    .store
                    .notice_failed(&item.id, retry_at, &problem)
                    .await?;
            }
        }
    }
    Ok(taken)
}

async fn post(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
    item: &Notice,
) -> Result<(), String> {
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", item.id.as_str())
        .header("X-Fairline-Event", item.event.as_str());
    if let Some(secret) = state.config.lifecycle.signing_secret.as_ref() {
        let ts = Utc::now().timestamp();
        for (name, value) in crate::signing::headers(secret, &item.id, ts, item.payload.as_bytes())
        {
            request = request.header(name, value);
        }
    }
    match request.body(item.payload.clone()).send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
        Err(e) if e.is_timeout() => Err("timed out".into()),
        Err(e) if e.is_connect() => Err("connection failed".into()),
        Err(_) => Err("request failed".into()),
    }
}
