//! Telnyx Call Control v2 (SPEC §8).
//!
//! Telnyx ignores the webhook's response body: Fairline answers 200 at once and drives the call
//! with REST commands. How the pieces fit in the `POST /webhooks/telnyx` handler:
//!
//! 1. [`UnverifiedEvent::from_headers`] with the raw body `Bytes`, then
//!    [`UnverifiedEvent::verify`] with `telnyx.public_key` and the clock (or
//!    [`UnverifiedEvent::skip_verification`] when `telnyx.verify_signatures = false`).
//!    A [`SignatureError`] → 403, nothing else happens.
//! 2. [`VerifiedEvent::parse`] → [`TelnyxEvent`]; a [`ParseError`] → 400 (its
//!    [`ParseError::ApiV1`] message tells the operator to switch the application to API v2).
//! 3. Deduplicate on [`TelnyxEvent::event_id`] (`data.id`), answer 200.
//! 4. For an inbound `call.initiated`, [`TelnyxEvent::incoming_call`] gives the [`CallEvent`]
//!    to decide; [`plan_call_initiated`] turns the resulting [`CallAction`] into commands. For
//!    any other event, [`plan_event`] gives the follow-up commands (speak, hangup) from the
//!    echoed [`ClientState`]. Send each with [`TelnyxClient::send_command`] (in order).
//!
//! Outgoing legs (`direction = "outgoing"`, e.g. the staff leg of a transfer) are never decided.
//!
//! [`TelnyxClient`] also implements [`CallControl`] for agent terminations. Telnyx has no
//! simple lookup from a `call_control_id` to the caller, so its [`CallControl::lookup_call`]
//! answers `Ok(None)`. The application state therefore uses [`TelnyxCalls`] (the webhook's
//! memory: deduplication and the callers of recent inbound calls, plus the client), whose
//! `lookup_call` answers from the callers remembered from `call.initiated`.
//!
//! The handler itself is [`webhook::telnyx_webhook`], routed by [`webhook::routes`].
//!
//! [`CallEvent`]: crate::providers::CallEvent
//! [`CallAction`]: crate::providers::CallAction
//! [`CallControl`]: crate::providers::CallControl
//! [`CallControl::lookup_call`]: crate::providers::CallControl::lookup_call

mod client;
mod commands;
mod events;
mod runtime;
mod signature;
mod state;
mod urgent;
pub mod webhook;

pub use client::{RetryPolicy, TelnyxClient, ERROR_CALL_ENDED};
pub use commands::{
    hangup_command, new_command_id, plan_call_answered, plan_call_initiated, plan_event,
    plan_speak_ended, Command, MAX_SPEAK_CHARS, VOICE_CY, VOICE_EN,
};
pub use events::{
    CallAnswered, CallInitiated, Direction, Hangup, ParseError, SpeakEnded, TelnyxEvent,
};
pub use runtime::{KnownCall, TelnyxCalls, CALLER_TTL, SEEN_CAPACITY, SEEN_TTL};
pub use signature::{
    SignatureError, UnverifiedEvent, VerifiedEvent, SIGNATURE_HEADER, TIMESTAMP_HEADER,
    TIMESTAMP_TOLERANCE_SECS,
};
pub use state::{ClientState, CLIENT_STATE_VERSION, MAX_CLIENT_STATE_LEN};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::messages::SpokenMessage;
    use crate::providers::CallAction;
    use base64::Engine;
    use chrono::{TimeZone, Utc};
    use ed25519_dalek::{Signer, SigningKey};

    /// The handler's path for a refusal: verify → parse → decide (given) → plan, then the
    /// echoed state on the next events.
    #[test]
    fn signed_inbound_fixture_to_refusal_commands() {
        let body = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/telnyx/call_initiated_inbound.json"
        ));
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let ts = "1705314600";
        let sig = base64::engine::general_purpose::STANDARD
            .encode(key.sign(format!("{ts}|{body}").as_bytes()).to_bytes());
        let mut headers = http::HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        headers.insert(TIMESTAMP_HEADER, ts.parse().unwrap());

        let verified = UnverifiedEvent::from_headers(&headers, body.into())
            .verify(
                &key.verifying_key().to_bytes(),
                Utc.timestamp_opt(1_705_314_650, 0).unwrap(),
            )
            .unwrap();
        let event = verified.parse().unwrap();
        let call = event.incoming_call().unwrap();
        assert_eq!(call.call_id.as_str(), "v3:Xx1ExampleCallControlIdxx");

        let action = CallAction::Refuse {
            messages: vec![SpokenMessage {
                language: crate::domain::Language::En,
                text: "Goodbye.".into(),
            }],
        };
        let plan = plan_call_initiated(&action, "sip:main-queue@pbx.example.org");
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].action, "answer");
        // Telnyx echoes the state on call.answered: the planner then speaks.
        let answered = plan_call_answered(plan[0].client_state().as_ref());
        assert_eq!(answered[0].action, "speak");
        assert_eq!(answered[0].body["payload"], "Goodbye.");
    }
}
