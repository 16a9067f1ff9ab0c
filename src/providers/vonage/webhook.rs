//! The Vonage webhook endpoints (SPEC §15), as axum handlers:
//!
//! * `GET|POST /webhooks/vonage/answer` — the application's answer URL (and fallback answer
//!   URL): verify, decide, answer an NCCO;
//! * `POST /webhooks/vonage/event` — call events: records the final status and duration of
//!   logged calls; the synchronous event of a `connect` to staff that was not answered
//!   (`unanswered`, `busy`, `failed`, `timeout`, `rejected`) is answered with a `talk` of
//!   `staff_unavailable`; anything else answers 204.
//!
//! When `[vonage]` is disabled both answer 404 and nothing else happens. A failed signature
//! check answers 401 with an empty body and nothing else happens (nothing recorded, nothing
//! decided); a payload that is not a JSON object, or lacks `uuid`, answers 400.
//!
//! Once a request is verified the answer to the answer URL is **always** a valid NCCO with
//! status 200: the decision runs under a timeout, with panics caught, within Vonage's 5 s
//! budget (capped at 4 s); a timeout or a panic answers the `decision.on_lookup_failure` NCCO
//! (`continue` → connect to `continue_to`, `refuse` → a `talk` of `service_unavailable`),
//! logged and counted in `fairline_webhook_failures_total{provider="vonage"}`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use crate::config::LookupFailurePolicy;
use crate::domain::{CallerId, Provider};
use crate::messages::MessageKey;
use crate::providers::{guarded, WebhookRequest};
use crate::state::AppState;
use crate::urgent::{self as safeguarding, Pressed};
use serde_json::json;

use super::signature::{UnverifiedRequest, VerifiedPayload};
use super::{events, ncco};

/// The answer URL path.
pub const ANSWER_PATH: &str = "/webhooks/vonage/answer";
/// The event URL path.
pub const EVENT_PATH: &str = ncco::EVENT_PATH;

/// Vonage waits 5 s for the NCCO before retrying; stay inside it.
const PLATFORM_BUDGET_CAP: Duration = Duration::from_secs(4);

/// The Vonage webhook routes (always registered; they answer 404 while Vonage is disabled).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(ANSWER_PATH, get(answer).post(answer))
        .route(EVENT_PATH, post(event))
        .route(super::urgent::URGENT_PATH, post(urgent_pressed))
}

pub(super) fn ncco_response(ncco: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, ncco::CONTENT_TYPE)],
        ncco.to_string(),
    )
        .into_response()
}

pub(super) fn status_only(code: u16) -> Response {
    StatusCode::from_u16(code)
        .unwrap_or(StatusCode::BAD_REQUEST)
        .into_response()
}

pub(super) fn rejected(endpoint: &'static str, code: u16, why: &dyn std::fmt::Display) -> u16 {
    metrics::counter!(
        "fairline_webhook_rejected_total",
        "provider" => "vonage",
        "status" => if code == 401 { "401" } else { "400" },
    )
    .increment(1);
    // The error's text names the failure kind only, never the token or the payload.
    tracing::warn!(endpoint, status = code, error = %why, "vonage webhook rejected");
    code
}

/// Verify the request (or skip verification when configured off) and read its fields.
/// `Err` is the status to answer.
pub(super) fn verified_fields(
    state: &AppState,
    endpoint: &'static str,
    request: WebhookRequest,
) -> Result<serde_json::Map<String, Value>, u16> {
    let cfg = &state.config.vonage;
    let WebhookRequest {
        method,
        uri,
        headers,
        body,
    } = request;
    let payload: VerifiedPayload = UnverifiedRequest::from_http(&method, &uri, &headers, body)
        .verify_if(
            cfg.verify_signatures,
            &state.vonage_verifier,
            state.clock.now(),
        )
        .map_err(|e| rejected(endpoint, e.http_status(), &e))?;
    payload.fields().map_err(|e| rejected(endpoint, 400, &e))
}

pub(super) fn count_failure(endpoint: &'static str, why: &str) {
    metrics::counter!("fairline_webhook_failures_total", "provider" => "vonage").increment(1);
    tracing::error!(
        endpoint,
        error = why,
        "vonage webhook: internal failure, answering the fallback"
    );
}

pub(super) fn budget(state: &AppState) -> Duration {
    state.config.server.request_timeout.min(PLATFORM_BUDGET_CAP)
}

/// The NCCO when Fairline itself failed on a verified incoming call.
pub fn failure_ncco(state: &AppState, to: Option<&str>) -> Value {
    match state.config.decision.on_lookup_failure {
        LookupFailurePolicy::Continue => ncco::render_continue(&state.config.vonage, to),
        LookupFailurePolicy::Refuse => ncco::render_talk(&state.render(
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

async fn answer(State(state): State<AppState>, request: WebhookRequest) -> Response {
    const ENDPOINT: &str = "answer";
    if !state.config.vonage.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let fields = match verified_fields(&state, ENDPOINT, request) {
        Ok(f) => f,
        Err(code) => return status_only(code),
    };
    let call = match events::answer(&fields) {
        Ok(c) => c,
        Err(e) => return status_only(rejected(ENDPOINT, e.http_status(), &e)),
    };
    tracing::debug!(
        call_id = %call.event.call_id,
        caller = %masked(&call.event.caller),
        "vonage incoming call"
    );
    if let Some(conversation) = &call.conversation_uuid {
        state
            .vonage_callers
            .remember(conversation, call.event.caller.clone())
            .await;
    }
    let worker = state.clone();
    let to = call.to.clone();
    let outcome = guarded(budget(&state), async move {
        let decision = worker.decide_call(&call.event).await;
        super::urgent::render_decision(&worker, &decision, call.to.as_deref())
    })
    .await;
    match outcome {
        Ok(ncco) => ncco_response(ncco),
        Err(why) => {
            count_failure(ENDPOINT, &why);
            ncco_response(failure_ncco(&state, to.as_deref()))
        }
    }
}

async fn event(State(state): State<AppState>, request: WebhookRequest) -> Response {
    const ENDPOINT: &str = "event";
    if !state.config.vonage.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let fields = match verified_fields(&state, ENDPOINT, request) {
        Ok(f) => f,
        Err(code) => return status_only(code),
    };
    let ev = match events::call_event(&fields) {
        Ok(Some(ev)) => ev,
        Ok(None) => return StatusCode::NO_CONTENT.into_response(),
        Err(e) => return status_only(rejected(ENDPOINT, e.http_status(), &e)),
    };
    tracing::debug!(call_id = %ev.call_id, status = %ev.status, "vonage call event");

    if ev.is_final() {
        call_ended(&state, &ev).await;
    }

    // The synchronous event of the staff leg: the member of staff was not reached.
    if ev.staff_not_reached() && ev.direction.as_deref() != Some("inbound") {
        return staff_not_reached(&state, &ev).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// A final status: the live-call row goes and the status is recorded for a logged call.
async fn call_ended(state: &AppState, ev: &events::CallStatusEvent) {
    const ENDPOINT: &str = "event";
    crate::console::live::call_ended(state, Provider::Vonage, &ev.call_id);
    let worker = state.clone();
    let (call_id, status, duration) = (ev.call_id.clone(), ev.status.clone(), ev.duration_seconds);
    let outcome = guarded(budget(state), async move {
        worker
            .store
            .record_call_status(Provider::Vonage, &call_id, &status, duration)
            .await
    })
    .await;
    match outcome {
        Ok(Ok(true)) => tracing::info!(
            call_id = %ev.call_id,
            call_status = %ev.status,
            duration_seconds = ev.duration_seconds,
            "vonage call ended: status recorded"
        ),
        Ok(Ok(false)) => tracing::debug!(
            call_id = %ev.call_id,
            "vonage call ended: not in the decision log, nothing stored"
        ),
        Ok(Err(e)) => count_failure(ENDPOINT, &e.to_string()),
        Err(why) => count_failure(ENDPOINT, &why),
    }
}

/// The synchronous event of a staff leg that was not answered: speak `staff_unavailable`.
async fn staff_not_reached(state: &AppState, ev: &events::CallStatusEvent) -> Response {
    const ENDPOINT: &str = "event";
    let caller = match &ev.conversation_uuid {
        Some(c) => state.vonage_callers.caller(c).await,
        None => None,
    }
    .unwrap_or(CallerId::Withheld);
    tracing::info!(
        call_id = %ev.call_id,
        status = %ev.status,
        caller = %masked(&caller),
        "vonage staff leg not answered: speaking staff_unavailable"
    );
    let worker = state.clone();
    let outcome = guarded(budget(state), async move {
        worker.staff_unavailable(&caller).await
    })
    .await;
    let messages = match outcome {
        Ok(m) => m,
        Err(why) => {
            count_failure(ENDPOINT, &why);
            state.render(
                MessageKey::StaffUnavailable,
                None,
                state.config.organisation.language,
                None,
            )
        }
    };
    ncco_response(ncco::render_talk(&messages))
}

/// `POST /webhooks/vonage/urgent`.
pub async fn urgent_pressed(State(state): State<AppState>, request: WebhookRequest) -> Response {
    const ENDPOINT: &str = "urgent";
    if !state.config.vonage.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let fields = match verified_fields(&state, ENDPOINT, request) {
        Ok(f) => f,
        Err(code) => return status_only(code),
    };
    let call = match events::answer(&fields) {
        Ok(c) => c,
        Err(e) => return status_only(rejected(ENDPOINT, e.http_status(), &e)),
    };
    let target = state.config.decision.urgent.vonage.clone();
    let pressed = safeguarding::pressed(&state, super::urgent::digits(&fields).as_deref());
    match (pressed, target) {
        (Pressed::Urgent, Some(target)) if state.config.decision.urgent.enabled => {
            let worker = state.clone();
            let label = target.to_config_string();
            let event = call.event.clone();
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
            ncco_response(ncco::render_route(
                &target,
                state.config.twilio.ring_timeout_seconds,
                None,
                &state.config.server.public_url,
                call.to.as_deref(),
            ))
        }
        _ => {
            safeguarding::declined(call.event.provider, &call.event.call_id);
            ncco_response(json!([]))
        }
    }
}
