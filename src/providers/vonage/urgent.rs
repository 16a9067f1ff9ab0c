//! The safeguarding route on Vonage (SPEC §14).
//!
//! A spoken refusal with an offer is answered with the `talk` actions (refusal, then offer)
//! followed by an `input` action — `type: ["dtmf"]`, `dtmf.maxDigits = 1`, `dtmf.timeOut = 5`,
//! `eventUrl: ["{public_url}/webhooks/vonage/urgent"]`. Vonage posts the result there (signed
//! like every Vonage webhook: 401 when the check fails); the urgent digit is answered with a
//! `connect` to `[decision.urgent] vonage` (ring timeout as for staff, the synchronous event
//! callback, no time limit), anything else — another key or `timed_out` — with `[]`, which
//! ends the call.

use serde_json::{json, Value};

use crate::providers::CallAction;
use crate::service::CallDecision;
use crate::state::AppState;
use crate::urgent::LISTEN_SECONDS;

use super::ncco;

/// Where the `input` action posts what the caller pressed.
pub const URGENT_PATH: &str = "/webhooks/vonage/urgent";

/// The NCCO for a decision: the refusal with the offer when one is made, otherwise what
/// [`ncco::render`] answers.
pub fn render_decision(state: &AppState, decision: &CallDecision, to: Option<&str>) -> Value {
    match (&decision.action, &decision.urgent_offer) {
        (CallAction::Refuse { messages }, Some(offer)) => {
            render_offer(messages, offer, &state.config.server.public_url)
        }
        (action, _) => ncco::render(
            action,
            &state.config.vonage,
            state.config.twilio.ring_timeout_seconds,
            &state.config.server.public_url,
            to,
        ),
    }
}

/// `talk` per text (refusal, then offer), then the one-key `input`.
pub fn render_offer(
    messages: &[crate::messages::SpokenMessage],
    offer: &[crate::messages::SpokenMessage],
    public_url: &str,
) -> Value {
    let all: Vec<crate::messages::SpokenMessage> = messages.iter().chain(offer).cloned().collect();
    let mut actions = match ncco::render_talk(&all) {
        Value::Array(a) => a,
        _ => Vec::new(),
    };
    actions.push(json!({
        "action": "input",
        "type": ["dtmf"],
        "dtmf": {"maxDigits": 1, "timeOut": LISTEN_SECONDS},
        "eventUrl": [format!("{}{URGENT_PATH}", public_url.trim_end_matches('/'))],
    }));
    Value::Array(actions)
}

/// The key pressed, from an `input` event: `dtmf.digits`, empty or absent when it timed out.
pub(super) fn digits(fields: &serde_json::Map<String, Value>) -> Option<String> {
    let dtmf = fields.get("dtmf")?.as_object()?;
    if dtmf.get("timed_out").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    dtmf.get("digits")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_an_input_event() {
        let f = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            digits(&f(json!({"dtmf": {"digits": "9", "timed_out": false}}))),
            Some("9".into())
        );
        assert_eq!(
            digits(&f(json!({"dtmf": {"digits": "", "timed_out": true}}))),
            None
        );
        assert_eq!(digits(&f(json!({"speech": {}}))), None);
    }
}
