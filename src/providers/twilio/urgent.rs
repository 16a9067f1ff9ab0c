//! The safeguarding route on Twilio (SPEC §14).
//!
//! A spoken refusal with an offer is answered with the `<Say>`s (refusal, then offer) inside a
//! `<Gather numDigits="1" timeout="5" action="{public_url}/webhooks/twilio/urgent">`, then
//! `<Hangup/>`: when the caller presses nothing Twilio carries on after the `<Gather>` and hangs
//! up without calling back. A key press is POSTed (signed, checked exactly like the voice
//! webhook) to `POST /webhooks/twilio/urgent` with `Digits`; the urgent digit is answered with a
//! `<Dial>` to `[decision.urgent] twilio` (ring timeout as for staff, the same dial-status
//! callback, no time limit), anything else with `<Hangup/>`.

use crate::providers::CallAction;
use crate::service::CallDecision;
use crate::state::AppState;
use crate::urgent::LISTEN_SECONDS;

use super::twiml;

/// Where the `<Gather>` posts the key the caller pressed.
pub const URGENT_PATH: &str = "/webhooks/twilio/urgent";

/// The TwiML for a decision: the refusal with the offer when one is made, otherwise what
/// [`twiml::render`] answers (for a call that continues, the document rendered at start).
pub fn render_decision(state: &AppState, decision: &CallDecision) -> bytes::Bytes {
    match (&decision.action, &decision.urgent_offer) {
        (CallAction::Refuse { messages }, Some(offer)) => {
            render_offer(messages, offer, &state.config.server.public_url).into()
        }
        (CallAction::Continue, _) => state.twilio_continue.clone(),
        (action, _) => twiml::render(
            action,
            &state.config.twilio,
            &state.config.server.public_url,
        )
        .into(),
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
