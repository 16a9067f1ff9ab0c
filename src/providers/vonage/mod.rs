//! Vonage Voice API (SPEC §15).
//!
//! The pieces, in the order a webhook handler uses them:
//!
//! 1. [`signature`]: build an [`UnverifiedRequest`] from the method, the raw query (GET) or raw
//!    body (POST) and the `Authorization: Bearer <JWT>` header, then
//!    [`UnverifiedRequest::verify`] it with the signature secret and the injected clock (or
//!    [`UnverifiedRequest::skip_verification`] when `vonage.verify_signatures = false`) to get
//!    a [`VerifiedPayload`]. A [`SignatureError`] answers 401 and nothing else happens.
//! 2. [`events`]: [`answer`] and [`call_event`] parse the fields into provider-neutral values
//!    (numbers arrive without `+` and become E.164); a [`ParseError`] answers 400.
//! 3. [`ncco`]: [`render`] turns a [`CallAction`](crate::providers::CallAction) into an NCCO
//!    (`application/json`).
//! 4. [`client`]: [`VonageClient`] implements [`CallControl`](crate::providers::CallControl)
//!    (look up, hang up) with an RS256 application JWT.
//!
//! [`config`] reads `[vonage]` and `[[staff]] vonage`; [`webhook`] holds the axum handlers;
//! [`memory`] remembers each conversation's caller so that an unanswered staff leg can be told
//! in the caller's language.
//!
//! ```text
//! let req = vonage::UnverifiedRequest::from_http(&method, &uri, &headers, body);
//! let payload = req.verify_if(cfg.verify_signatures, &verifier, clock.now())?; // 401
//! let call = vonage::answer(&payload.fields()?)?;                                          // 400
//! let action = decide(call.event).await;
//! let ncco = vonage::render(&action, &cfg, ring_timeout, &public_url, call.to.as_deref());
//! ```

pub mod client;
pub mod config;
pub mod events;
pub mod memory;
pub mod ncco;
pub mod signature;
pub mod urgent;
pub mod webhook;

pub use client::{ApplicationClaims, VonageClient, APPLICATION_JWT_TTL_SECS};
pub use config::{VonageConfig, VonageEndpoint};
pub use events::{answer, call_event, AnswerRequest, CallStatusEvent, ParseError};
pub use memory::RecentCallers;
pub use ncco::{render, render_continue, render_route, render_talk, CONTENT_TYPE, EVENT_PATH};
pub use signature::{
    payload_hash, query_json, query_pairs, sign, SignatureError, UnverifiedRequest,
    VerifiedPayload, Verifier, WebhookClaims, TOLERANCE_SECS,
};
pub use webhook::ANSWER_PATH;
