//! Twilio Programmable Voice (SPEC §7).
//!
//! The pieces, in the order a webhook handler uses them:
//!
//! 1. [`signature`]: build an [`UnverifiedRequest`] from the raw path-and-query, the
//!    `X-Twilio-Signature` header and the raw body, then [`UnverifiedRequest::verify`] it (or
//!    [`UnverifiedRequest::skip_verification`] when `twilio.verify_signatures = false`) to get a
//!    [`VerifiedForm`]. A [`SignatureError`] answers [`SignatureError::http_status`] (403, or 400
//!    for a malformed body) and nothing else happens.
//! 2. [`events`]: [`incoming_call`], [`dial_status`] and [`status_callback`] parse the form into
//!    provider-neutral values; a [`ParseError`] answers 400.
//! 3. [`twiml`]: [`render`] turns a [`CallAction`](crate::providers::CallAction) into TwiML,
//!    [`render_dial_result`] answers the dial-status callback, [`render_fallback`] is the answer
//!    when anything fails inside Fairline. Send with `Content-Type:` [`CONTENT_TYPE`].
//! 4. [`rest`]: [`TwilioClient`] implements [`CallControl`](crate::providers::CallControl)
//!    (hang up, look up a call).
//!
//! ```text
//! let req = twilio::UnverifiedRequest::from_http(&original_uri, &headers, body);
//! let verifier = twilio::Verifier::new(&cfg.server.public_url, &cfg.twilio.auth_token); // once
//! let form = req.verify_if(cfg.twilio.verify_signatures, &verifier)
//!     .map_err(|e| e.http_status())?;
//! let event = twilio::incoming_call(&form).map_err(|e| e.http_status())?;
//! let action = decide(event).await;                      // the decision service
//! let xml = twilio::render(&action, &cfg.twilio, &cfg.server.public_url);
//! ([(CONTENT_TYPE, twilio::CONTENT_TYPE)], xml)
//! ```

pub mod events;
pub mod rest;
pub mod signature;
pub mod twiml;
pub mod urgent;
pub mod webhook;

pub use events::{
    classify_from, dial_connected, dial_status, incoming_call, status_callback, DialStatus,
    ParseError, StatusCallback,
};
pub use rest::{RetryPolicy, TwilioClient};
pub use signature::{
    compute_signature, SignatureError, UnverifiedRequest, VerifiedForm, Verifier, SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
};
pub use twiml::{
    render, render_continue, render_dial, render_dial_result, render_fallback, render_hangup,
    render_refuse, CONTENT_TYPE, DIAL_STATUS_PATH,
};
