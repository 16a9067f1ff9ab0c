//! The Twilio webhook endpoints (SPEC §7), as axum handlers:
//!
//! * `POST /webhooks/twilio/voice` — the incoming call: verify, decide, answer TwiML;
//! * `POST /webhooks/twilio/dial-status` — the `<Dial action>` callback when a designated member
//!   of staff was rung;
//! * `POST /webhooks/twilio/status` — call status callbacks (final status and duration);
//! * `POST /webhooks/twilio/urgent` — the key pressed after a refusal that offered the
//!   safeguarding route (SPEC §14; TwiML from [`super::urgent`]).
//!
//! Every handler takes the raw request target (as received, before nesting), the headers and
//! the raw body bytes ([`WebhookRequest`]; never a `Form` extractor: it would lose repeated and
//! empty fields, which take part in the signature) and builds an [`UnverifiedRequest`]. A failed signature check answers 403 with
//! an empty body and nothing else happens; a body that is not a form, or lacks a required field,
//! answers 400; a body over `server.max_body_bytes` is refused with 413 by the body-limit layers
//! of [`crate::app`].
//!
//! Once a request is verified the answer is **always** valid TwiML with status 200: the decision
//! runs under a timeout, with panics caught, (`server.request_timeout`, capped below Twilio's 15 s
//! budget); a timeout or a panic answers the `decision.on_lookup_failure` TwiML
//! (`continue` → `<Redirect>` into the normal flow, `refuse` → the `service_unavailable` text
//! and `<Hangup/>`), logged and counted in `fairline_webhook_failures_total{provider="twilio"}`.
//!
//! The status callback answers `204 No Content` (Twilio ignores the body of a status callback).
//!
//! Logs carry the call id and the masked caller number only; never signatures or tokens.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::config::LookupFailurePolicy;
use crate::config::TwilioTarget;
use crate::domain::CallerId;
use crate::messages::MessageKey;
use crate::providers::{guarded, WebhookRequest};
use crate::state::AppState;
use crate::urgent::{self as safeguarding, Pressed};

use super::signature::{UnverifiedRequest, VerifiedForm};
use super::{events, twiml};

/// The incoming-call webhook path.
pub const VOICE_PATH: &str = "/webhooks/twilio/voice";
/// The call status callback path.
pub const STATUS_PATH: &str = "/webhooks/twilio/status";

/// Twilio waits 15 s in total for an answer (connection included); stay well inside it.
const PLATFORM_BUDGET_CAP: Duration = Duration::from_secs(10);

/// The Twilio webhook routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(VOICE_PATH, post(voice))
        .route(twiml::DIAL_STATUS_PATH, post(dial_status))
        .route(STATUS_PATH, post(status))
        .route(super::urgent::URGENT_PATH, post(urgent_pressed))
}

pub(super) fn twiml_response(xml: impl Into<bytes::Bytes>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, twiml::CONTENT_TYPE)],
        axum::body::Body::from(xml.into()),
    )
        .into_response()
}

pub(super) fn status_only(code: u16) -> Response {
    StatusCode::from_u16(code)
        .unwrap_or(StatusCode::BAD_REQUEST)
        .into_response()
}

/// Verify the request (or skip verification when configured off). `Err` is the status to answer.
pub(super) fn verified(
    state: &AppState,
    endpoint: &'static str,
    request: WebhookRequest,
) -> Result<VerifiedForm, u16> {
    let cfg = &state.config;
    UnverifiedRequest::from_http(&request.uri, &request.headers, request.body)
        .verify_if(cfg.twilio.verify_signatures, &state.twilio_verifier)
        .map_err(|e| {
            let code = e.http_status();
            metrics::counter!(
                "fairline_webhook_rejected_total",
                "provider" => "twilio",
                "status" => if code == 403 { "403" } else { "400" },
            )
            .increment(1);
            // The error's text names the failure kind only, never the header's value.
            tracing::warn!(endpoint, status = code, error = %e, "twilio webhook rejected");
            code
        })
}

pub(super) fn count_failure(endpoint: &'static str, why: &str) {
    metrics::counter!("fairline_webhook_failures_total", "provider" => "twilio").increment(1);
    tracing::error!(
        endpoint,
        error = why,
        "twilio webhook: internal failure, answering the fallback"
    );
}

/// The time the decision may take before the fallback answer is sent.
pub(super) fn budget(state: &AppState) -> Duration {
    state.config.server.request_timeout.min(PLATFORM_BUDGET_CAP)
}

/// The answer when Fairline itself failed on a verified incoming call.
pub fn failure_twiml(state: &AppState) -> String {
    match state.config.decision.on_lookup_failure {
        LookupFailurePolicy::Continue => twiml::render_fallback(&state.config.twilio),
        LookupFailurePolicy::Refuse => twiml::render_refuse(&state.render(
            MessageKey::ServiceUnavailable,
            None,
            state.config.organisation.language,
            None,
        )),
    }
}

fn masked(caller: &CallerId) -> String {
    match caller {
        CallerId::Number(n) => n.masked(),
        CallerId::Withheld => "withheld".into(),
        CallerId::Unrecognised => "unrecognised".into(),
    }
}

async fn voice(State(state): State<AppState>, request: WebhookRequest) -> Response {
    const ENDPOINT: &str = "voice";
    let form = match verified(&state, ENDPOINT, request) {
        Ok(f) => f,
        Err(code) => return status_only(code),
    };
    let event = match events::incoming_call(&form) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(endpoint = ENDPOINT, error = %e, "malformed twilio webhook");
            return status_only(e.http_status());
        }
    };
    tracing::debug!(
        call_id = %event.call_id,
        caller = %masked(&event.caller),
        "twilio incoming call"
    );
    let worker = state.clone();
    let limit = budget(&state);
    let outcome = guarded(limit, async move {
        let decision = worker.decide_call(&event).await;
        super::urgent::render_decision(&worker, &decision)
    })
    .await;
    match outcome {
        Ok(xml) => twiml_response(xml),
        Err(why) => {
            count_failure(ENDPOINT, &why);
            twiml_response(failure_twiml(&state))
        }
    }
}

async fn dial_status(State(state): State<AppState>, request: WebhookRequest) -> Response {
    const ENDPOINT: &str = "dial-status";
    let form = match verified(&state, ENDPOINT, request) {
        Ok(f) => f,
        Err(code) => return status_only(code),
    };
    let dial = match events::dial_status(&form) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(endpoint = ENDPOINT, error = %e, "malformed twilio webhook");
            return status_only(e.http_status());
        }
    };
    let caller = events::classify_from(form.get("From"));
    tracing::info!(
        call_id = %dial.call_id,
        caller = %masked(&caller),
        dial_call_status = dial.dial_call_status.as_deref().unwrap_or("none"),
        call_status = dial.call_status.as_deref().unwrap_or("none"),
        "twilio dial ended"
    );
    if dial.connected() {
        // The member of staff answered: the call is over, hang up.
        return twiml_response(twiml::render_hangup());
    }
    // SPEC §7: any other DialCallStatus speaks staff_unavailable and hangs up. That includes a
    // call ended during the dial (an agent's end-call, or the caller hanging up), for which
    // Twilio still requests this URL: the answer is valid and nothing is recorded.
    let worker = state.clone();
    let dial_call_status = dial.dial_call_status.clone();
    let outcome = guarded(budget(&state), async move {
        let messages = worker.staff_unavailable(&caller).await;
        twiml::render_dial_result(dial_call_status.as_deref(), &messages)
    })
    .await;
    match outcome {
        Ok(xml) => twiml_response(xml),
        Err(why) => {
            count_failure(ENDPOINT, &why);
            let messages = state.render(
                MessageKey::StaffUnavailable,
                None,
                state.config.organisation.language,
                None,
            );
            twiml_response(twiml::render_refuse(&messages))
        }
    }
}

async fn status(State(state): State<AppState>, request: WebhookRequest) -> Response {
    const ENDPOINT: &str = "status";
    let form = match verified(&state, ENDPOINT, request) {
        Ok(f) => f,
        Err(code) => return status_only(code),
    };
    let cb = match events::status_callback(&form) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(endpoint = ENDPOINT, error = %e, "malformed twilio webhook");
            return status_only(e.http_status());
        }
    };
    if !cb.is_final() {
        tracing::debug!(call_id = %cb.call_id, call_status = %cb.call_status, "twilio call progress");
        return StatusCode::NO_CONTENT.into_response();
    }
    crate::console::live::call_ended(&state, crate::domain::Provider::Twilio, &cb.call_id);
    let worker = state.clone();
    let (call_id, call_status, duration) = (
        cb.call_id.clone(),
        cb.call_status.clone(),
        cb.duration_seconds,
    );
    let outcome = guarded(budget(&state), async move {
        worker
            .store
            .record_call_status(
                crate::domain::Provider::Twilio,
                &call_id,
                &call_status,
                duration,
            )
            .await
    })
    .await;
    match outcome {
        Ok(Ok(true)) => tracing::info!(
            call_id = %cb.call_id,
            call_status = %cb.call_status,
            duration_seconds = cb.duration_seconds,
            "twilio call ended: status recorded"
        ),
        Ok(Ok(false)) => tracing::debug!(
            call_id = %cb.call_id,
            "twilio call ended: not in the decision log, nothing stored"
        ),
        Ok(Err(e)) => count_failure(ENDPOINT, &e.to_string()),
        Err(why) => count_failure(ENDPOINT, &why),
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /webhooks/twilio/urgent`.
pub async fn urgent_pressed(State(state): State<AppState>, request: WebhookRequest) -> Response {
    const ENDPOINT: &str = "urgent";
    let form = match verified(&state, ENDPOINT, request) {
        Ok(f) => f,
        Err(code) => return status_only(code),
    };
    let event = match events::incoming_call(&form) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(endpoint = ENDPOINT, error = %e, "malformed twilio webhook");
            return status_only(e.http_status());
        }
    };
    let target = state.config.decision.urgent.twilio.clone();
    let pressed = safeguarding::pressed(&state, form.get("Digits"));
    match (pressed, target) {
        (Pressed::Urgent, Some(target)) if state.config.decision.urgent.enabled => {
            let worker = state.clone();
            let label = match &target {
                TwilioTarget::Client(c) => format!("client:{c}"),
                TwilioTarget::Sip(s) => s.clone(),
                TwilioTarget::Number(n) => n.as_str().to_owned(),
            };
            let recorded = guarded(budget(&state), async move {
                safeguarding::route(
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
                count_failure(ENDPOINT, &why);
            }
            twiml_response(twiml::render_dial(
                &target,
                state.config.twilio.ring_timeout_seconds,
                None,
                &state.config.server.public_url,
            ))
        }
        _ => {
            safeguarding::declined(event.provider, &event.call_id);
            twiml_response(twiml::render_hangup())
        }
    }
}
