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
//! simple lookup from a `call_control_id` to the caller, so [`CallControl::lookup_call`] always
//! answers `Ok(None)`; the handler can remember callers from `call.initiated` events instead.
//!
//! [`CallEvent`]: crate::providers::CallEvent
//! [`CallAction`]: crate::providers::CallAction
//! [`CallControl`]: crate::providers::CallControl
//! [`CallControl::lookup_call`]: crate::providers::CallControl::lookup_call

mod client;
mod commands;
mod events;
mod signature;
mod state;

pub use client::{RetryPolicy, TelnyxClient, ERROR_CALL_ENDED};
pub use commands::{
    hangup_command, new_command_id, plan_call_answered, plan_call_initiated, plan_event,
    plan_speak_ended, Command, MAX_SPEAK_CHARS, VOICE_CY, VOICE_EN,
};
pub use events::{
    CallAnswered, CallInitiated, Direction, Hangup, ParseError, SpeakEnded, TelnyxEvent,
};
pub use signature::{
    SignatureError, UnverifiedEvent, VerifiedEvent, SIGNATURE_HEADER, TIMESTAMP_HEADER,
    TIMESTAMP_TOLERANCE_SECS,
};
pub use state::{ClientState, CLIENT_STATE_VERSION, MAX_CLIENT_STATE_LEN};
