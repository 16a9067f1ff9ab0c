//! The safeguarding route on Twilio (SPEC §14).
//!
//! A spoken refusal with an offer is answered with the `<Say>`s (refusal, then offer) inside a
//! `<Gather numDigits="1" timeout="5" action="{public_url}/webhooks/twilio/urgent">`, then
//! `<Hangup/>`: when the caller presses nothing Twilio carries on after the `<Gather>` and hangs
//! up without calling back. A key press is POSTed (signed, checked exactly like the voice
//! webhook) to `POST /webhooks/twilio/urgent` with `Digits`; the urgent digit is answered with a
//! `<Dial>` to `[decision.urgent] twilio` (ring timeout as for staff, the same dial-status
//! callback, no time limit), anything else with `<Hangup/>`.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::config::TwilioTarget;
use crate::providers::CallAction;
use crate::service::CallDecision;
use crate::state::AppState;
use crate::urgent::{self, Pressed, LISTEN_SECONDS};

use super::{events, twiml, webhook};

/// Where the `<Gather>` posts the key the caller pressed.
pub const URGENT_PATH: &str = "/webhooks/twilio/urgent";

/// The TwiML for a decision: the refusal with the offer when one is made, otherwise what
/// [`twiml::render`] answers.
pub fn render_decision(state: &AppState, decision: &CallDecision) -> String {
    match (&decision.action, &decision.urgent_offer) {
        (CallAction::Refuse { messages }, Some(offer)) => {
            render_offer(messages, offer, &state.config.server.public_url)
        }
        (action, _) => twiml::render(
            action,
            &state.config.twilio,
            &state.config.server.public_url,
        ),
    }
}

/// `<Gather …>` around every `<Say>`, then `<Hangup/>`.
pub fn render_offer(
    messages: &[crate::messages::SpokenMessage],
    offer: &[crate::messages::SpokenMessage],
    public_url: &str,
) -> String {
    let action = format!("{}{URGENT_PATH}", public_url.trim_end_matches('/'));
    let says: String = messages.iter().chain(offer).map(twiml::say).collect();
    twiml::document(&format!(
        r#"<Gather numDigits="1" timeout="{LISTEN_SECONDS}" action="{}">{says}</Gather><Hangup/>"#,
        quick_xml::escape::escape(action.as_str())
    ))
}

/// `POST /webhooks/twilio/urgent`.
pub async fn urgent(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "urgent";
    let form = match webhook::verified(&state, ENDPOINT, &uri, &headers, body) {
        Ok(f) => f,
        Err(code) => return webhook::status_only(code),
    };
    let event = match events::incoming_call(&form) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(endpoint = ENDPOINT, error = %e, "malformed twilio webhook");
            return webhook::status_only(e.http_status());
        }
    };
    tracing::Span::current().record("call_id", event.call_id.as_str());
    let target = state.config.decision.urgent.twilio.clone();
    let pressed = urgent::pressed(&state, form.get("Digits"));
    match (pressed, target) {
        (Pressed::Urgent, Some(target)) if state.config.decision.urgent.enabled => {
            let worker = state.clone();
            let label = match &target {
                TwilioTarget::Client(c) => format!("client:{c}"),
                TwilioTarget::Sip(s) => s.clone(),
                TwilioTarget::Number(n) => n.as_str().to_owned(),
            };
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
            webhook::twiml_response(twiml::render_dial(
                &target,
                state.config.twilio.ring_timeout_seconds,
                None,
                &state.config.server.public_url,
            ))
        }
        _ => {
            urgent::declined(event.provider, &event.call_id);
            webhook::twiml_response(twiml::render_hangup())
        }
    }
}
