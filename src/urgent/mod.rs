//! The safeguarding route on a spoken refusal (SPEC §14).
//!
//! With `[decision.urgent] enabled = true`, every refusal that is *spoken* (not a `reject`)
//! ends with the `urgent_offer` text and listens for one key for 5 s. The configured digit puts
//! the call through to the platform's duty target; any other key, or silence, hangs up.
//!
//! * [`App::urgent_offer`] says whether (and what) to offer for a decision: only for a spoken
//!   refusal, only when enabled, and only when the caller's arrangement (if any) has not set
//!   `urgent_route = false`.
//! * [`route`] is what every platform calls when the digit was pressed: the call is relabelled
//!   in the decision log and live calls (outcome `route`, reason `urgent_route`, still not
//!   counted), logged and counted in metrics.
//!
//! The platform wire formats are in `providers::{twilio,telnyx,vonage}::urgent`.

pub mod config;

pub use config::UrgentConfig;

use crate::domain::{
    Arrangement, CallId, CallerId, Language, LanguageSetting, Provider, TerminationId,
};
use crate::engine::{Decision, Outcome, Reason};
use crate::messages::{MessageKey, SpokenMessage};
use crate::providers::caller_number;
use crate::providers::CallAction;
use crate::state::{App, AppState};
use crate::store::NewNotification;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How long the platform listens for the key, in seconds.
pub const LISTEN_SECONDS: u32 = 5;

/// The key in words, for the spoken offer: digits as they are, `*` and `#` named.
fn digit_words(language: Language, digit: char) -> String {
    match (language, digit) {
        (Language::En, '*') => "the star key".into(),
        (Language::En, '#') => "the hash key".into(),
        (Language::Cy, '*') => "y botwm seren".into(),
        (Language::Cy, '#') => "y botwm hash".into(),
        (_, d) => d.to_string(),
    }
}

impl App {
    /// The offer to speak after a refusal, or `None` when none is made: the action is not a
    /// spoken refusal, `[decision.urgent]` is off, or the arrangement says `urgent_route = false`.
    pub fn urgent_offer(
        &self,
        action: &CallAction,
        arrangement: Option<&Arrangement>,
        language: LanguageSetting,
    ) -> Option<Vec<SpokenMessage>> {
        let urgent = &self.config.decision.urgent;
        if !urgent.enabled || !matches!(action, CallAction::Refuse { .. }) {
            return None;
        }
        if arrangement.is_some_and(|a| !a.urgent_route) {
            return None;
        }
        let mut offer = self.render(MessageKey::UrgentOffer, arrangement, language, None);
        for m in &mut offer {
            m.text = m
                .text
                .replace("{digit}", &digit_words(m.language, urgent.digit));
        }
        Some(offer)
    }
}

/// What a platform reported after the offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pressed {
    /// The urgent digit: put the call through.
    Urgent,
    /// Another key, or nothing within the time: hang up.
    Other,
}

/// Classify the key a platform reported (`None` or empty: silence).
pub fn pressed(state: &AppState, digits: Option<&str>) -> Pressed {
    if state.config.decision.urgent.is_urgent_digit(digits) {
        Pressed::Urgent
    } else {
        Pressed::Other
    }
}

/// The caller pressed the urgent digit on `call_id`: record it (decision log and live calls,
/// not counted) before the platform is told to put the call through. Never fails: a store
/// problem is logged and the call is still put through (the caller's safety comes first).
pub async fn route(
    state: &AppState,
    provider: Provider,
    call_id: &CallId,
    caller: &CallerId,
    target: &str,
) {
    metrics::counter!(
        "fairline_urgent_routes_total",
        "provider" => provider.as_str(),
    )
    .increment(1);
    let caller_masked = match caller {
        CallerId::Number(n) => n.masked(),
        CallerId::Withheld => "withheld".into(),
        CallerId::Unrecognised => "unrecognised".into(),
    };
    let budget = state.config.decision.lookup_timeout * 4;
    let now = state.clock.now();
    // Live calls: replace the refusal's row through the live-call queue (which keeps a call's
    // writes in order on this instance), keeping when the call started.
    let mut routed = Decision::plain(Outcome::Route, Reason::UrgentRoute);
    let mut started = now;
    if let Ok(Ok(Some(row))) =
        tokio::time::timeout(budget, state.store.get_live_call(provider, call_id)).await
    {
        started = row.started_at;
        routed.arrangement_id = row.arrangement_id;
    }
    state.live_calls.ended(provider, call_id);
    state
        .live_calls
        .decided(provider, call_id, caller, &routed, started);
    let arrangement_id = routed.arrangement_id.clone();
    match tokio::time::timeout(budget, state.store.record_urgent_route(provider, call_id)).await {
        Ok(Ok(logged)) => tracing::warn!(
            provider = provider.as_str(),
            call_id = %call_id,
            caller = %caller_masked,
            logged,
            "urgent route: a refused caller asked for the duty manager; putting the call through"
        ),
        Ok(Err(e)) => tracing::error!(
            provider = provider.as_str(),
            call_id = %call_id,
            error = %e,
            "urgent route: could not record it; putting the call through anyway"
        ),
        Err(_) => tracing::error!(
            provider = provider.as_str(),
            call_id = %call_id,
            "urgent route: recording timed out; putting the call through anyway"
        ),
    }
    let note = UrgentNotification {
        event: EVENT_URGENT_ROUTE,
        id: TerminationId::generate().to_string(),
        call: UrgentCall {
            provider: provider.as_str(),
            call_id: call_id.as_str().to_owned(),
            caller: caller_number(caller).map(|n| n.as_str().to_owned()),
            arrangement_id: arrangement_id.map(|a| a.to_string()),
            routed_at: now,
            target: target.to_owned(),
        },
    };
    notify(state, budget, note).await;
}

/// The event name of the notification (SPEC §14).
pub const EVENT_URGENT_ROUTE: &str = "call.urgent_route";

/// The JSON body POSTed to `notifications.webhook_url`.
#[derive(Debug, Serialize)]
struct UrgentNotification {
    event: &'static str,
    /// Unique per notification (also the `Idempotency-Key`).
    id: String,
    call: UrgentCall,
}

#[derive(Debug, Serialize)]
struct UrgentCall {
    provider: &'static str,
    call_id: String,
    caller: Option<String>,
    arrangement_id: Option<String>,
    routed_at: DateTime<Utc>,
    /// Where the call was put through, as configured in `[decision.urgent]`.
    target: String,
}

/// Queue the notification in the outbox (when a receiver is configured) and wake the worker.
async fn notify(state: &AppState, budget: std::time::Duration, note: UrgentNotification) {
    match state.config.notifications.webhook_url.as_deref() {
        Some(url) if !url.is_empty() => {}
        _ => return,
    }
    let Ok(id) = TerminationId::parse(&note.id) else {
        return;
    };
    let payload = match serde_json::to_string(&note) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "urgent route: could not encode the notification");
            return;
        }
    };
    let queued = NewNotification {
        event: EVENT_URGENT_ROUTE.into(),
        payload,
        due_at: Utc::now(),
    };
    match tokio::time::timeout(budget, state.store.queue_notification(&id, &queued)).await {
        Ok(Ok(())) => state.outbox.wake(),
        Ok(Err(e)) => tracing::error!(
            error = %e,
            "urgent route: could not queue the call.urgent_route notification"
        ),
        Err(_) => {
            tracing::error!("urgent route: queueing the call.urgent_route notification timed out")
        }
    }
}

/// The caller did not press the urgent digit.
pub fn declined(provider: Provider, call_id: &CallId) {
    metrics::counter!(
        "fairline_urgent_declined_total",
        "provider" => provider.as_str(),
    )
    .increment(1);
    tracing::info!(
        provider = provider.as_str(),
        call_id = %call_id,
        "urgent offer: no urgent digit; hanging up"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_in_words() {
        assert_eq!(digit_words(Language::En, '9'), "9");
        assert_eq!(digit_words(Language::En, '#'), "the hash key");
        assert_eq!(digit_words(Language::Cy, '*'), "y botwm seren");
    }
}
