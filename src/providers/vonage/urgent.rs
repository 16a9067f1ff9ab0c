//! The safeguarding route on Vonage (SPEC §14).
//!
//! A spoken refusal with an offer is answered with the `talk` actions (refusal, then offer)
//! followed by an `input` action — `type: ["dtmf"]`, `dtmf.maxDigits = 1`, `dtmf.timeOut = 5`,
//! `eventUrl: ["{public_url}/webhooks/vonage/urgent"]`. Vonage posts the result there (signed
//! like every Vonage webhook: 401 when the check fails); the urgent digit is answered with a
//! `connect` to `[decision.urgent] vonage` (ring timeout as for staff, the synchronous event
//! callback, no time limit), anything else — another key or `timed_out` — with `[]`, which
//! ends the call.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::providers::CallAction;
use crate::service::CallDecision;
use crate::state::AppState;
use crate::urgent::{self, Pressed, LISTEN_SECONDS};

use super::{events, ncco, webhook};

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
fn digits(fields: &serde_json::Map<String, Value>) -> Option<String> {
    let dtmf = fields.get("dtmf")?.as_object()?;
    if dtmf.get("timed_out").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    dtmf.get("digits")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `POST /webhooks/vonage/urgent`.
pub async fn urgent(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "urgent";
    if !state.config.vonage.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let fields = match webhook::verified_fields(&state, ENDPOINT, &method, &uri, &headers, body) {
        Ok(f) => f,
        Err(code) => return webhook::status_only(code),
    };
    let call = match events::answer(&fields) {
        Ok(c) => c,
        Err(e) => return webhook::status_only(webhook::rejected(ENDPOINT, e.http_status(), &e)),
    };
    tracing::Span::current().record("call_id", call.event.call_id.as_str());
    let target = state.config.decision.urgent.vonage.clone();
    let pressed = urgent::pressed(&state, digits(&fields).as_deref());
    match (pressed, target) {
        (Pressed::Urgent, Some(target)) if state.config.decision.urgent.enabled => {
            let worker = state.clone();
            let label = target.to_config_string();
            let event = call.event.clone();
            let recorded = webhook::guarded(webhook::budget(&state), async move {
                urgent::route(
                    &worker,
                    event.provider,
                    &event.call_id,
                    &event.caller,
                    &label,
                )
                .await;
            })
            .await;
            if let Err(why) = recorded {
                // Put through all the same: the caller's safety comes first.
                webhook::count_failure(ENDPOINT, &why);
            }
            webhook::ncco_response(ncco::render_route(
                &target,
                state.config.twilio.ring_timeout_seconds,
                None,
                &state.config.server.public_url,
                call.to.as_deref(),
            ))
        }
        _ => {
            urgent::declined(call.event.provider, &call.event.call_id);
            webhook::ncco_response(json!([]))
        }
    }
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
