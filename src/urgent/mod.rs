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

use crate::domain::{Arrangement, CallId, CallerId, Language, LanguageSetting, Provider};
use crate::messages::{MessageKey, SpokenMessage};
use crate::providers::CallAction;
use crate::state::{App, AppState};

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
            m.text = m.text.replace("{digit}", &digit_words(m.language, urgent.digit));
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
pub async fn route(state: &AppState, provider: Provider, call_id: &CallId, caller: &CallerId) {
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
    match tokio::time::timeout(
        budget,
        state.store.record_urgent_route(provider, call_id),
    )
    .await
    {
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
